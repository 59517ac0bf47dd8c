"""Ticket numbers: <project key>-<YYYYMMDD of creation, UTC>-<6-digit sequence>, e.g. 101-20261126-000001.

The sequence is one row per project and day, bumped by a single UPSERT ... RETURNING statement: atomic on PostgreSQL
(row lock) and on SQLite (one writer at a time), so concurrent processes never get the same number."""

from __future__ import annotations

import datetime as dt
import re

from django.db import connection

from postdesk.tickets.models import TicketSequence

NUMBER_RE = re.compile(r"^([A-Za-z0-9]{1,20})-(\d{8})-(\d{6,})$")


def format_number(key: str, day: dt.date, value: int) -> str:
    return f"{key}-{day:%Y%m%d}-{value:06d}"


def next_number(project, day: dt.date) -> str:
    table = connection.ops.quote_name(TicketSequence._meta.db_table)
    sql = (
        f"INSERT INTO {table} (project_id, day, value) VALUES (%s, %s, 1) "
        f"ON CONFLICT (project_id, day) DO UPDATE SET value = {table}.value + 1 RETURNING value"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [project.pk, day.isoformat()])
        (value,) = cursor.fetchone()
    return format_number(project.key, day, value)


def is_well_formed(number: str) -> bool:
    match = NUMBER_RE.match(number)
    if not match:
        return False
    try:
        dt.datetime.strptime(match.group(2), "%Y%m%d")
    except ValueError:
        return False
    return True
