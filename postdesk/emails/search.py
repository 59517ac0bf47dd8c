"""Full-text search over emails through one interface: FTS5 on SQLite, tsvector + GIN on PostgreSQL.

Index entries are written in the same transaction as the email (``index``) and removed with it (``unindex``).
``matching_ids_sql`` returns an SQL fragment to compose with ORM filters: ``Email.objects.filter(id__in=RawSQL(...))``.
"""

from __future__ import annotations

import json
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


def contains_pattern(term: str) -> str:
    """A LIKE/ILIKE pattern (escape character backslash) matching values that contain `term`."""
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


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
    like = contains_pattern(term)
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


# Known senders (the email log's sender filter) -------------------------------------------------------------------
# emails_knownsender holds each distinct (address, name) of the emails' senders, kept by triggers so that no way of
# writing emails can miss it. A substring is looked up there (an FTS5 trigram table over it on SQLite, pg_trgm on its
# lower-cased `search` column on PostgreSQL); the emails of the matching senders are then read through the
# (from_address, from_name, date) index.

SENDER_TABLE = "emails_knownsender"
SENDER_TRGM = "emails_knownsender_trgm"  # SQLite
SENDER_CAP = 5000  # more matching senders: too common for an address list; the log walks its ordered index instead
NAME_PAIRS_CAP = 200  # senders matched by their name only are looked up as (address, name) pairs


def _sender_search(prefix: str = "") -> str:
    """The SQL of a known sender's `search` value from an email row (`prefix`: NEW. in a trigger)."""
    return f"lower({prefix}from_name || ' ' || {prefix}from_address)"


# what the triggers do (the same statements in SQLite's triggers and PostgreSQL's trigger function)
_SENDER_ADD = (
    f"INSERT INTO {SENDER_TABLE}(address, name, search) "
    f"VALUES (NEW.from_address, NEW.from_name, {_sender_search('NEW.')}) ON CONFLICT DO NOTHING;"
)
_SENDER_FORGET = (  # the old sender, once no email has it any more
    f"DELETE FROM {SENDER_TABLE} WHERE address = OLD.from_address AND name = OLD.from_name "
    "AND NOT EXISTS (SELECT 1 FROM emails_email WHERE from_address = OLD.from_address AND from_name = OLD.from_name);"
)

_SQLITE_SENDER_TRIGGERS = (
    f"CREATE TRIGGER IF NOT EXISTS emails_sender_added AFTER INSERT ON emails_email BEGIN {_SENDER_ADD} END",
    "CREATE TRIGGER IF NOT EXISTS emails_sender_changed AFTER UPDATE OF from_address, from_name ON emails_email "
    "WHEN NEW.from_address IS NOT OLD.from_address OR NEW.from_name IS NOT OLD.from_name "
    f"BEGIN {_SENDER_ADD} {_SENDER_FORGET} END",
    f"CREATE TRIGGER IF NOT EXISTS emails_sender_deleted AFTER DELETE ON emails_email BEGIN {_SENDER_FORGET} END",
    # the trigram index of the senders (an external-content FTS5 table kept by the sender table's own triggers)
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {SENDER_TRGM} USING fts5(address, name, content='{SENDER_TABLE}', "
    "content_rowid='id', tokenize='trigram')",
    f"CREATE TRIGGER IF NOT EXISTS known_sender_added AFTER INSERT ON {SENDER_TABLE} BEGIN "
    f"INSERT INTO {SENDER_TRGM}(rowid, address, name) VALUES (NEW.id, NEW.address, NEW.name); END",
    f"CREATE TRIGGER IF NOT EXISTS known_sender_deleted AFTER DELETE ON {SENDER_TABLE} BEGIN "
    f"INSERT INTO {SENDER_TRGM}({SENDER_TRGM}, rowid, address, name) VALUES ('delete', OLD.id, OLD.address, OLD.name);"
    " END",
)

_PG_SENDER_FUNCTION = f"""
CREATE OR REPLACE FUNCTION emails_known_sender() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN {_SENDER_ADD} END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN {_SENDER_FORGET} END IF;
    RETURN NULL;
END $$"""

_PG_SENDER_TRIGGERS = (
    "CREATE TRIGGER emails_sender_added AFTER INSERT ON emails_email "
    "FOR EACH ROW EXECUTE FUNCTION emails_known_sender()",
    "CREATE TRIGGER emails_sender_changed AFTER UPDATE OF from_address, from_name ON emails_email FOR EACH ROW "
    "WHEN (NEW.from_address IS DISTINCT FROM OLD.from_address OR NEW.from_name IS DISTINCT FROM OLD.from_name) "
    "EXECUTE FUNCTION emails_known_sender()",
    "CREATE TRIGGER emails_sender_deleted AFTER DELETE ON emails_email "
    "FOR EACH ROW EXECUTE FUNCTION emails_known_sender()",
)


def create_sender_schema(schema_editor) -> None:
    """The triggers and (PostgreSQL) trigram indexes of emails_knownsender, and the senders of existing emails."""
    if schema_editor.connection.vendor == "sqlite":
        statements = _SQLITE_SENDER_TRIGGERS
    else:
        statements = (
            _PG_SENDER_FUNCTION,
            *_PG_SENDER_TRIGGERS,
            f"CREATE INDEX IF NOT EXISTS known_sender_search_trgm ON {SENDER_TABLE} USING gin (search gin_trgm_ops)",
        )
    for statement in statements:
        schema_editor.execute(statement)
    schema_editor.execute(
        f"INSERT INTO {SENDER_TABLE}(address, name, search) SELECT from_address, from_name, {_sender_search()} "
        "FROM emails_email GROUP BY from_address, from_name ON CONFLICT DO NOTHING"
    )


def drop_sender_schema(schema_editor) -> None:
    if schema_editor.connection.vendor == "sqlite":
        for name in ("emails_sender_added", "emails_sender_changed", "emails_sender_deleted", "known_sender_added",
                     "known_sender_deleted"):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}")
        schema_editor.execute(f"DROP TABLE IF EXISTS {SENDER_TRGM}")
        return
    for name in ("emails_sender_added", "emails_sender_changed", "emails_sender_deleted"):
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {name} ON emails_email")
    schema_editor.execute("DROP FUNCTION IF EXISTS emails_known_sender()")


def sender_matches(term: str, cap: int = SENDER_CAP) -> tuple[list[str], list[tuple[str, str]]] | None:
    """The known senders whose "name address" contains `term` (case-insensitively): (addresses whose every email
    matches, because the address itself contains the term; (address, name) pairs matched through the name only).
    None when there are more than `cap` of them, or more than NAME_PAIRS_CAP name-only pairs."""
    term = (term or "").strip()
    if not term:
        return None
    if connection.vendor == "sqlite" and len(term) >= 3:  # the trigram index needs three characters
        sql = (
            f"SELECT s.address, s.name FROM {SENDER_TRGM} t JOIN {SENDER_TABLE} s ON s.id = t.rowid "
            f"WHERE {SENDER_TRGM} MATCH %s LIMIT %s"
        )
        params = ['"' + term.replace('"', '""') + '"', cap + 1]
    else:  # PostgreSQL (pg_trgm on the lower-cased column), or a term too short for SQLite's trigrams (a scan)
        sql = f"SELECT address, name FROM {SENDER_TABLE} WHERE search LIKE %s ESCAPE '\\' LIMIT %s"
        params = [contains_pattern(term.lower()), cap + 1]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
    if len(found) > cap:
        return None
    lowered = term.lower()
    addresses = sorted({a for a, _ in found if lowered in a.lower()})
    whole = set(addresses)
    pairs = sorted({(a, n) for a, n in found if a not in whole})
    return (addresses, pairs) if len(pairs) <= NAME_PAIRS_CAP else None


def sender_condition(addresses: list[str], pairs: list[tuple[str, str]]) -> dict:
    """QuerySet.extra() arguments restricting emails to these senders (every email of `addresses`, the emails of
    `pairs` of address and name). PostgreSQL gets them as one JSON text: a thousand addresses as separate parameters,
    or as arrays (quoted element by element by the driver), cost more than the query."""
    if connection.vendor == "postgresql":
        return {
            "where": [
                "(emails_email.from_address IN (SELECT json_array_elements_text(%s::json)) OR "
                "(emails_email.from_address, emails_email.from_name) IN "
                "(SELECT a, n FROM json_to_recordset(%s::json) AS p(a text, n text)))"
            ],
            "params": [json.dumps(addresses), json.dumps([{"a": a, "n": n} for a, n in pairs])],
        }
    terms = [f"emails_email.from_address IN ({', '.join(['%s'] * len(addresses))})"] if addresses else []
    terms += ["(emails_email.from_address = %s AND emails_email.from_name = %s)"] * len(pairs)
    params = [*addresses, *(value for pair in pairs for value in pair)]
    return {"where": [f"({' OR '.join(terms) or '0 = 1'})"], "params": params}


SELECTIVE = 5000  # at most this many matches: filter by the id set; more: walk the ordered index instead


def selective_ids(kind: str, term: str, cap: int = SELECTIVE) -> list[int] | None:
    """The ids matching a full-text query (kind 'q') or a recipient substring (kind 'recipients') when
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
