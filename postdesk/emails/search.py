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


_PREFIX_RE = re.compile(r"(\w+)\*", re.UNICODE)


def tokens(query: str) -> list[str]:
    return _TOKEN_RE.findall(query or "")[:16]


def matching_ids_sql(query: str, *, prefix_last: bool = False) -> tuple[str, list] | None:
    """(sql, params) selecting the ids of emails matching every word of the query, or None when it has no words.
    A word ending in * matches as a prefix, and the last word too with `prefix_last` (the search box: results while
    typing); prefix lookups over common stems cost more, so the API matches whole words."""
    words = tokens(query)
    if not words:
        return None
    prefixes = {m.lower() for m in _PREFIX_RE.findall(query or "")}
    if prefix_last:
        prefixes.add(words[-1].lower())
    if connection.vendor == "sqlite":
        terms = [f'"{w}"*' if w.lower() in prefixes else f'"{w}"' for w in words]
        return f"SELECT rowid FROM {SQLITE_TABLE} WHERE {SQLITE_TABLE} MATCH %s", [" AND ".join(terms)]
    terms = [w.replace("'", "") + (":*" if w.lower() in prefixes else "") for w in words]
    return f"SELECT email_id FROM {PG_TABLE} WHERE document @@ to_tsquery('simple', %s)", [" & ".join(terms)]


def newest_matching_ids(query: str, *, before_id: int | None = None, limit: int = 500) -> list[int]:
    """Ids of emails matching every word of the query, highest (newest) first, below
    `before_id`: read straight from the index in id order."""
    match = matching_ids_sql(query)
    if match is None:
        return []
    sql, params = match
    id_column = "rowid" if connection.vendor == "sqlite" else "email_id"
    if before_id is not None:
        sql += f" AND {id_column} < %s"
        params = [*params, before_id]
    sql += f" ORDER BY {id_column} DESC LIMIT %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, limit])
        return [row[0] for row in cursor.fetchall()]


def optimize() -> None:
    """Merge index segments (after mass deletion: drops deleted terms from the file)."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"INSERT INTO {SQLITE_TABLE}({SQLITE_TABLE}) VALUES ('optimize')")
        else:
            cursor.execute(f"VACUUM (ANALYZE) {PG_TABLE}")


def clear() -> None:
    """Empty both indexes (tests: a transactional test's flush empties the model tables only)."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            for table in (SQLITE_TABLE, SQLITE_ADDRESS_TABLE):
                cursor.execute(f"INSERT INTO {table}({table}) VALUES ('delete-all')")
        else:
            cursor.execute(f"TRUNCATE {PG_TABLE}")


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


# Address substring search (the email log's sender and recipient filters) -----------------------------------------
# SQLite: an FTS5 table with the trigram tokenizer over "name address" of the sender and the recipients, queried
# for substrings of three or more characters. PostgreSQL: pg_trgm GIN indexes on the email columns themselves, which
# the planner uses for ILIKE '%...%'.

SQLITE_ADDRESS_TABLE = "emails_address_trgm"


def address_document(from_name: str, from_address: str, to, cc) -> tuple[str, str]:
    sender = f"{from_name or ''} {from_address or ''}".replace("\x00", "")[:600]
    recipients = " ".join([*(to or []), *(cc or [])]).replace("\x00", "")[:4000]
    return sender, recipients


def index_addresses(rows) -> None:
    """rows: (email_id, from_name, from_address, to, cc). SQLite only (PostgreSQL indexes the columns)."""
    if connection.vendor != "sqlite":
        return
    rows = [(i, *address_document(n, a, t, c)) for i, n, a, t, c in rows]
    if rows:
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {SQLITE_ADDRESS_TABLE}(rowid, sender, recipients) VALUES (%s, %s, %s)", rows
            )


def unindex_addresses(rows) -> None:
    if connection.vendor != "sqlite":
        return
    rows = [(i, *address_document(n, a, t, c)) for i, n, a, t, c in rows]
    if rows:
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {SQLITE_ADDRESS_TABLE}({SQLITE_ADDRESS_TABLE}, rowid, sender, recipients) "
                "VALUES ('delete', %s, %s, %s)",
                rows,
            )


def address_filter_sql(column: str, term: str) -> tuple[str, list] | None:
    """(sql, params) for a WHERE condition on emails_email matching `term` as a substring of the sender
    (column='sender') or the recipients (column='recipients'), index-assisted; None: use a plain scan."""
    term = (term or "").strip()
    if len(term) < 3:
        return None
    if connection.vendor == "sqlite":
        quoted = '"' + term.replace('"', '""') + '"'
        return (f"emails_email.id IN (SELECT rowid FROM {SQLITE_ADDRESS_TABLE} "
                f"WHERE {SQLITE_ADDRESS_TABLE} MATCH %s)", [f"{column} : {quoted}"])
    like = "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    if column == "sender":
        return "(emails_email.from_address ILIKE %s OR emails_email.from_name ILIKE %s)", [like, like]
    return "(emails_email.\"to\"::text ILIKE %s OR emails_email.cc::text ILIKE %s)", [like, like]


def create_address_schema(schema_editor) -> None:
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {SQLITE_ADDRESS_TABLE} USING fts5("
            "sender, recipients, content='', tokenize='trigram')"
        )
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, expression in (
        ("email_from_address_trgm", "from_address gin_trgm_ops"),
        ("email_from_name_trgm", "from_name gin_trgm_ops"),
        ("email_to_trgm", '("to"::text) gin_trgm_ops'),
        ("email_cc_trgm", "(cc::text) gin_trgm_ops"),
    ):
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON emails_email USING gin ({expression})")


def drop_address_schema(schema_editor) -> None:
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(f"DROP TABLE IF EXISTS {SQLITE_ADDRESS_TABLE}")
    else:
        for name in ("email_from_address_trgm", "email_from_name_trgm", "email_to_trgm", "email_cc_trgm"):
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


SELECTIVE = 5000  # at most this many matches: filter by the id set; more: walk the ordered index instead


def selective_ids(kind: str, term: str, cap: int = SELECTIVE) -> list[int] | None:
    """The ids matching a full-text query (kind 'q') or an address substring (kind 'sender' / 'recipients') when
    there are at most `cap` of them, else None (too common to be worth an id list). SQLite only: PostgreSQL's
    planner combines its GIN indexes itself, so this returns None there."""
    if connection.vendor != "sqlite":
        return None
    if kind == "q":
        match = matching_ids_sql(term)
        if match is None:
            return None
        sql, params = match
    else:
        term = (term or "").strip()
        if len(term) < 3:
            return None
        quoted = '"' + term.replace('"', '""') + '"'
        sql = f"SELECT rowid FROM {SQLITE_ADDRESS_TABLE} WHERE {SQLITE_ADDRESS_TABLE} MATCH %s"
        params = [f"{kind} : {quoted}"]
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} LIMIT %s", [*params, cap + 1])
        ids = [row[0] for row in cursor.fetchall()]
    return ids if len(ids) <= cap else None
