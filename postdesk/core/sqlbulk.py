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


def insert(model, columns: list[str], rows: list[tuple], returning: bool = True,
           ignore_conflicts: bool = False) -> list[int]:
    """INSERT the rows (in order); returns their new ids when `returning`. `ignore_conflicts`: a row that breaks a
    unique constraint is skipped (ON CONFLICT DO NOTHING; then nothing is returned)."""
    if ignore_conflicts and returning:
        raise ValueError("rows skipped on conflict have no ids to return")
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
            if ignore_conflicts:
                sql += " ON CONFLICT DO NOTHING"
            params = [value for row in part for value in row]
            if returning:
                cursor.execute(sql + " RETURNING id", params)
                got = [row[0] for row in cursor.fetchall()]
                ids += sorted(got) if connection.vendor == "sqlite" else got
            else:
                cursor.execute(sql, params)
    return ids


def insert_objects(model, objs: list) -> None:
    """Insert unsaved model instances in bulk, in plain SQL, and set their primary keys (what bulk_create does,
    without its per-field preparation). Handles the column types postdesk uses: JSON, datetimes, plain values."""
    from django.db import models as m

    if not objs:
        return
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    converters = []
    for f in fields:
        if isinstance(f, m.JSONField):
            converters.append(lambda v: None if v is None else db_json(v))
        elif isinstance(f, m.DateTimeField):
            converters.append(lambda v: None if v is None else db_datetime(v))
        elif isinstance(f, m.DateField):
            converters.append(lambda v: None if v is None else v.isoformat())
        else:
            converters.append(None)
    rows = []
    for obj in objs:
        row = []
        for f, convert in zip(fields, converters, strict=True):
            value = getattr(obj, f.attname)
            row.append(convert(value) if convert is not None else value)
        rows.append(tuple(row))
    ids = insert(model, [f.column for f in fields], rows)
    for obj, pk in zip(objs, ids, strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = "default"


def update_ids(model, assignments: str, params: list, ids: list[int]) -> int:
    """UPDATE the rows with these ids: ``assignments`` is the SET clause with %s placeholders for ``params`` (fixed
    SQL from the caller, values bound). Returns the number of rows changed."""
    if not ids:
        return 0
    table = connection.ops.quote_name(model._meta.db_table)
    changed = 0
    chunk = MAX_PARAMS - len(params)
    with connection.cursor() as cursor:
        for start in range(0, len(ids), chunk):
            part = ids[start : start + chunk]
            cursor.execute(
                f"UPDATE {table} SET {assignments} WHERE id IN ({', '.join(['%s'] * len(part))})", [*params, *part]
            )
            changed += cursor.rowcount
    return changed


def update_where(model, assignments: str, params: list, where: str, where_params: list) -> int:
    """UPDATE the rows matching ``where`` (fixed SQL from the caller with %s placeholders, values bound): the ORM's
    update() compiles its statement on every call. Returns the number of rows changed."""
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {assignments} WHERE {where}", [*params, *where_params])
        return cursor.rowcount
