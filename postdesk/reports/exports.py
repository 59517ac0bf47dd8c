"""CSV exports of the email log and the ticket list, streamed in constant memory whatever the number of rows.

Rows are read newest first in keyset pages (``WHERE (moment, id) < (last moment, last id) ORDER BY moment DESC, id
DESC LIMIT n``: the order of the list indexes, never OFFSET, never the whole result in memory) as narrow ``values()``
rows, written through ``csv`` into a small buffer that is handed to the response every few dozen kilobytes.

The file is UTF-8 with a byte order mark (Excel needs it to read UTF-8), and every text cell that a spreadsheet would
take for a formula (starting with = + - @, a tab or a carriage return) gets a leading apostrophe."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterable, Iterator

from django.db.models import Q
from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header

from postdesk.emails.models import Direction, Kind, Status
from postdesk.tickets.models import Status as TicketStatus
from postdesk.tickets.models import Substatus

PAGE_SIZE = 2000
FLUSH_BYTES = 64 * 1024
BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value):
    """One CSV cell: moments in UTC (ISO date and time), lists comma-separated, text safe from formula injection."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return value
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        value = ", ".join(str(v) for v in value)
    text = str(value)
    if text.startswith(FORMULA_STARTS):
        text = "'" + text
    return text


def keyset(qs, fields: list[str], *, moment: str, size: int | None = None) -> Iterator[dict]:
    """Every row of `qs` (as dicts of `fields`), newest first by (moment, id), read `size` rows at a time."""
    size = size or PAGE_SIZE
    fields = list(dict.fromkeys([moment, "id", *fields]))
    last = None
    while True:
        page = qs
        if last is not None:
            page = qs.filter(Q(**{f"{moment}__lt": last[0]}) | Q(**{moment: last[0], "id__lt": last[1]}))
        rows = list(page.order_by(f"-{moment}", "-id").values(*fields)[:size])
        yield from rows
        if len(rows) < size:
            return
        last = (rows[-1][moment], rows[-1]["id"])
        del rows


def csv_chunks(header: list[str], rows: Iterable[dict], to_cells: Callable[[dict], list]) -> Iterator[str]:
    """The CSV text in chunks of about FLUSH_BYTES: the BOM and the header first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write(BOM)
    writer.writerow(header)
    for row in rows:
        writer.writerow([cell(v) for v in to_cells(row)])
        if buffer.tell() >= FLUSH_BYTES:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def csv_response(filename: str, chunks: Iterator[str]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(chunks, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response["Cache-Control"] = "private, no-store"
    return response


# The email log --------------------------------------------------------------------------------------------------

EMAIL_COLUMNS = [
    ("Date", "date"),
    ("Direction", "direction"),
    ("Kind", "kind"),
    ("Status", "status"),
    ("From name", "from_name"),
    ("From", "from_address"),
    ("To", "to"),
    ("Cc", "cc"),
    ("Subject", "subject"),
    ("Language", "language"),
    ("Queue", "queue__name"),
    ("Locked by agent", "locked_by__username"),
    ("Locked at", "locked_at"),
    ("Ticket number", "ticket__number"),
    ("Sent by", "sent_by__username"),
    (
        "Project",
        "project_id",
    ),  # written as the project's key (no join on projects: see emails.api.LIST_FIELDS)
    ("Email ID", "id"),
]
_LABELS = {
    "direction": dict(Direction.choices),
    "kind": dict(Kind.choices),
    "status": dict(Status.choices),
}


def _email_cells(keys: dict[int, str]) -> Callable[[dict], list]:
    def cells(row: dict) -> list:
        out = []
        for _, f in EMAIL_COLUMNS:
            value = row[f]
            if f == "project_id":
                value = keys.get(value, value)
            elif f in _LABELS:
                value = _LABELS[f].get(value, value)
            out.append(value)
        return out

    return cells


def email_rows(qs) -> Iterator[dict]:
    """`qs`: the email log's filtered queryset (postdesk.emails.api.filtered)."""
    return keyset(qs, [f for _, f in EMAIL_COLUMNS], moment="date")


def email_csv(qs) -> Iterator[str]:
    from postdesk.projects.models import Project

    keys = dict(Project.objects.values_list("id", "key"))
    return csv_chunks([h for h, _ in EMAIL_COLUMNS], email_rows(qs), _email_cells(keys))


# The ticket list ------------------------------------------------------------------------------------------------

TICKET_COLUMNS = [
    ("Ticket number", "number"),
    ("Ticket ID", "id"),
    ("Ticket type", "type__label"),
    ("Export value", "type__export_value"),
    ("Title", "title"),
    ("Agent", "owner__username"),
    ("Status", "status"),
    ("Substatus", "substatus"),
    ("First open time", "created_at"),
    ("First sent time", "first_sent_time"),
    ("Last sent time", "last_sent_time"),
    ("First received time", "first_received_time"),
    ("Last received time", "last_received_time"),
    ("Sent emails", "sent_count"),
    ("Received emails", "received_count"),
    ("SLA (seconds)", "sla_seconds"),
    ("SLA", "sla"),
    ("Project", "project__key"),
]
_TICKET_LABELS = {"status": dict(TicketStatus.choices), "substatus": dict(Substatus.choices)}


def duration(seconds: int | float | None) -> str:
    """h:mm:ss (hours not capped at 24); empty for None."""
    if seconds is None:
        return ""
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _ticket_cells(row: dict) -> list:
    out = []
    for _, f in TICKET_COLUMNS:
        if f == "sla":
            out.append(duration(row["sla_seconds"]))
        elif f in _TICKET_LABELS:
            out.append(_TICKET_LABELS[f].get(row[f], row[f]))
        else:
            out.append(row[f])
    return out


def ticket_rows(qs) -> Iterator[dict]:
    return keyset(qs, [f for _, f in TICKET_COLUMNS if f != "sla"], moment="created_at")


def ticket_csv(qs) -> Iterator[str]:
    return csv_chunks([h for h, _ in TICKET_COLUMNS], ticket_rows(qs), _ticket_cells)
