"""Full-text search over emails through one interface: FTS5 on SQLite, tsvector + GIN on PostgreSQL.

Index entries are written in the same transaction as the email (``index``) and removed with it (``unindex``).
``matching_ids_sql`` returns an SQL fragment to compose with ORM filters: ``Email.objects.filter(id__in=RawSQL(...))``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.db import connection

MAX_INDEXED_CHARS = 100_000
SQLITE_TABLE = "emails_fts"
PG_TABLE = "emails_search"
_TOKEN_RE = re.compile(r"\w+", re.UNICODE)


def document(subject: str, text: str, sender: str) -> tuple[str, str, str]:
    """What is indexed (capped; no NUL characters, which PostgreSQL refuses)."""
    return tuple(
        (value or "")[:cap].replace("\x00", "")
        for value, cap in ((subject, 1000), (text, MAX_INDEXED_CHARS), (sender, 600))
    )


def index(rows: Iterable[tuple[int, int, str, str, str]]) -> None:
    """rows: (email_id, project_id, subject, text, sender)."""
    rows = [(i, p, *document(s, t, f)) for i, p, s, t, f in rows]
    if not rows:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.executemany(
                f"INSERT INTO {SQLITE_TABLE}(rowid, subject, body, sender) VALUES (%s, %s, %s, %s)",
                [(i, s, t, f) for i, _, s, t, f in rows],
            )
        else:
            cursor.executemany(
                f"INSERT INTO {PG_TABLE}(email_id, document) VALUES "
                "(%s, setweight(to_tsvector('simple', %s), 'A') || to_tsvector('simple', %s) || "
                "setweight(to_tsvector('simple', %s), 'B')) "
                "ON CONFLICT (email_id) DO UPDATE SET document = EXCLUDED.document",
                [(i, s, t, f) for i, _, s, t, f in rows],
            )


def unindex(rows: Iterable[tuple[int, str, str, str]]) -> None:
    """rows: (email_id, subject, text, sender) exactly as indexed (FTS5 contentless tables need the old values)."""
    rows = [(i, *document(s, t, f)) for i, s, t, f in rows]
    if not rows:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.executemany(
                f"INSERT INTO {SQLITE_TABLE}({SQLITE_TABLE}, rowid, subject, body, sender) "
                "VALUES ('delete', %s, %s, %s, %s)",
                rows,
            )
        else:
            cursor.executemany(f"DELETE FROM {PG_TABLE} WHERE email_id = %s", [(r[0],) for r in rows])


def tokens(query: str) -> list[str]:
    return _TOKEN_RE.findall(query or "")[:16]


def matching_ids_sql(query: str) -> tuple[str, list] | None:
    """(sql, params) selecting the ids of emails matching every word of the query (the last one as a prefix),
    or None when the query has no words."""
    words = tokens(query)
    if not words:
        return None
    if connection.vendor == "sqlite":
        terms = [f'"{w}"' for w in words[:-1]] + [f'"{words[-1]}"*']
        return f"SELECT rowid FROM {SQLITE_TABLE} WHERE {SQLITE_TABLE} MATCH %s", [" AND ".join(terms)]
    terms = [w.replace("'", "") for w in words]
    tsquery = " & ".join(terms[:-1] + [terms[-1] + ":*"])
    return f"SELECT email_id FROM {PG_TABLE} WHERE document @@ to_tsquery('simple', %s)", [tsquery]


def optimize() -> None:
    """Merge index segments (after mass deletion: drops deleted terms from the file)."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"INSERT INTO {SQLITE_TABLE}({SQLITE_TABLE}) VALUES ('optimize')")
        else:
            cursor.execute(f"VACUUM (ANALYZE) {PG_TABLE}")


def create_schema(schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        schema_editor.execute(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {SQLITE_TABLE} USING fts5("
            "subject, body, sender, content='', tokenize='unicode61 remove_diacritics 2')"
        )
    else:
        schema_editor.execute(
            f"CREATE TABLE IF NOT EXISTS {PG_TABLE} ("
            "email_id bigint PRIMARY KEY, "  # no foreign key: rows go with their email through unindex()
            "document tsvector NOT NULL)"
        )
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {PG_TABLE}_gin ON {PG_TABLE} USING gin (document)")


def drop_schema(schema_editor) -> None:
    table = SQLITE_TABLE if schema_editor.connection.vendor == "sqlite" else PG_TABLE
    schema_editor.execute(f"DROP TABLE IF EXISTS {table}")
