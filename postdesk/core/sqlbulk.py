"""Bulk inserts in plain SQL for the hot paths (campaign sending, mass events): the ORM's bulk_create spends more
time preparing each field than the database spends writing. The same statements run on SQLite and PostgreSQL.

Values go in as given: callers pass what the column stores (ids for foreign keys, JSON as text, datetimes through
`db_datetime`)."""

from __future__ import annotations

import json

from django.db import connection

MAX_PARAMS = 30000


def db_datetime(moment):
    return connection.ops.adapt_datetimefield_value(moment)


def db_json(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def insert(model, columns: list[str], rows: list[tuple], returning: bool = True) -> list[int]:
    """INSERT the rows (in order); returns their new ids when `returning`."""
    if not rows:
        return []
    table = connection.ops.quote_name(model._meta.db_table)
    cols = ", ".join(connection.ops.quote_name(c) for c in columns)
    per_row = len(columns)
    chunk = max(1, MAX_PARAMS // per_row)
    ids: list[int] = []
    placeholder = "(" + ", ".join(["%s"] * per_row) + ")"
    with connection.cursor() as cursor:
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            sql = f"INSERT INTO {table} ({cols}) VALUES {', '.join([placeholder] * len(part))}"
            params = [value for row in part for value in row]
            if returning:
                cursor.execute(sql + " RETURNING id", params)
                got = [row[0] for row in cursor.fetchall()]
                ids += sorted(got) if connection.vendor == "sqlite" else got
            else:
                cursor.execute(sql, params)
    return ids
