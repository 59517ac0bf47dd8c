"""The vendor-compatible API under /v2 (../shared/reference/vcc-live-api.md), so that integrations written for the
vendor keep working: the email log by month or day, and the ticket list, in the vendor's shapes (payloads.py).

Same token auth as /api/v1 (``Authorization: Bearer``), same access rules (projects.access, emails.access,
tickets.access: supervisors see everything, agents what they see in the UI). Bad parameters answer 422 with the
vendor's envelope and postdesk's usual error fields: ``{"rows": [], "totalCount": 0, "messages": [], "errors":
["…"], "detail": "…", "field": "…"}``. docs/integrations.md maps every field."""

from __future__ import annotations

import calendar
import datetime as dt

from django.http import Http404
from django.utils import timezone
from ninja import NinjaAPI, Query, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError

from postdesk.accounts.auth import api_auth
from postdesk.core import clock
from postdesk.core.errors import DomainError, Invalid
from postdesk.emails.access import emails_visible_to
from postdesk.emails.models import Email
from postdesk.integrations import payloads
from postdesk.projects.access import get_project_for
from postdesk.tickets.access import tickets_visible_to
from postdesk.tickets.models import Ticket

DEFAULT_ROWS = 100
MAX_ROWS = 1000

# dateField -> the Ticket column it filters on
DATE_FIELDS = {
    "firstSentTime": "first_sent_time",
    "lastSentTime": "last_sent_time",
    "firstOpenTime": "created_at",
    "firstReceivedTime": "first_received_time",
    "softDeadline": "soft_deadline",
    "lastCloseTime": "last_close_time",
    "lastReceivedTime": "last_received_time",
}
DEFAULT_DATE_FIELD = "firstOpenTime"

compat_api = NinjaAPI(
    title="postdesk vendor-compatible API",
    version="2",
    urls_namespace="compat",
    auth=api_auth,
    docs_url="/docs",
    openapi_url="/openapi.json",
    description="The vendor's email log and ticket list shapes, for integrations moving to postdesk. "
    "Authenticate with `Authorization: Bearer <token>`. Field mapping: docs/integrations.md.",
)


def _error(request, status: int, detail: str, field: str | None = None):
    body = {"rows": [], "totalCount": 0, "messages": [], "errors": [detail], "detail": detail}
    if field:
        body["field"] = field
    return compat_api.create_response(request, body, status=status)


@compat_api.exception_handler(DomainError)
def domain_error(request, exc: DomainError):
    return _error(request, exc.status, str(exc), exc.field)


@compat_api.exception_handler(ValidationError)
def validation_error(request, exc: ValidationError):
    parts = []
    for e in exc.errors:
        loc = [str(p) for p in e.get("loc", ()) if p not in ("query", "path", "body")]
        parts.append(f"{'.'.join(loc) or 'request'}: {e.get('msg', 'invalid')}")
    return _error(request, 422, "; ".join(parts) or "invalid request")


@compat_api.exception_handler(AuthenticationError)
def auth_error(request, exc):
    return _error(request, 401, "authentication required: Authorization: Bearer <token>")


@compat_api.exception_handler(Http404)
def not_found(request, exc):
    return _error(request, 404, str(exc) or "not found")


@compat_api.exception_handler(HttpError)
def http_error(request, exc: HttpError):
    return _error(request, exc.status_code, str(exc))


# Parameters -----------------------------------------------------------------------------------------------------


def whole(value: str | None, field: str, *, default: int, low: int, high: int | None = None) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise Invalid(f"{field} must be a whole number", field=field)
    if number < low or (high is not None and number > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise Invalid(f"{field} must be {bounds}", field=field)
    return number


def moment(value: str, field: str, *, end: bool = False) -> tuple[dt.datetime, bool]:
    """A date ("YYYY-MM-DD": the whole day) or a date and time ("YYYY-MM-DD HH:MM:SS", ISO 8601; without an offset
    in the server's time zone). Returns (moment, inclusive): a bare date as an end is the next midnight, exclusive."""
    text = value.strip()
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            start = timezone.make_aware(dt.datetime.combine(day, dt.time()), timezone.get_default_timezone())
            return (start + dt.timedelta(days=1), False) if end else (start, True)
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(
            f"{field} must be a date (YYYY-MM-DD) or a date and time (YYYY-MM-DD HH:MM:SS)", field=field
        )
    if parsed.tzinfo is None:
        parsed = timezone.make_aware(parsed, timezone.get_default_timezone())
    try:
        return clock.as_utc(parsed), True
    except ValueError:
        raise Invalid(f"{field} is out of range", field=field) from None


# Email log ------------------------------------------------------------------------------------------------------


class EmailLogQuery(Schema):
    start: str | None = None  # offset
    num: str | None = None  # max rows
    direction: str | None = None  # ASC | DESC: the sort order by time


def period(year: str, month: str, day: str | None) -> tuple[dt.datetime, dt.datetime]:
    y = whole(year, "year", default=0, low=1970, high=9998)
    m = whole(month, "month", default=0, low=1, high=12)
    tz = timezone.get_default_timezone()
    if day is None:
        start = dt.datetime(y, m, 1)
        end = dt.datetime(y + (m == 12), m % 12 + 1, 1)
    else:
        d = whole(day, "day", default=0, low=1, high=calendar.monthrange(y, m)[1])
        start = dt.datetime(y, m, d)
        end = start + dt.timedelta(days=1)
    return timezone.make_aware(start, tz), timezone.make_aware(end, tz)


def email_log(user, key: str, start_at: dt.datetime, end_at: dt.datetime, q: EmailLogQuery) -> dict:
    project = get_project_for(user, key)
    start = whole(q.start, "start", default=0, low=0)
    num = whole(q.num, "num", default=DEFAULT_ROWS, low=1, high=MAX_ROWS)
    direction = (q.direction or "ASC").upper()
    if direction not in ("ASC", "DESC"):
        raise Invalid("direction is ASC or DESC", field="direction")
    qs = emails_visible_to(user, Email.objects.filter(project=project, date__gte=start_at, date__lt=end_at))
    total = qs.count()
    order = ("date", "id") if direction == "ASC" else ("-date", "-id")
    rows = qs.select_related(*payloads.EMAIL_LOG_RELATED).order_by(*order)[start : start + num]
    return {"rows": [payloads.email_log_row(e) for e in rows], "totalCount": total}


@compat_api.get(
    "/projects/{key}/emails/{year}/{month}", summary="Get Email Log: the emails of a month", tags=["emails"]
)
def email_log_month(request, key: str, year: str, month: str, q: Query[EmailLogQuery]):
    start_at, end_at = period(year, month, None)
    return email_log(request.auth, key, start_at, end_at, q)


@compat_api.get(
    "/projects/{key}/emails/{year}/{month}/{day}",
    summary="Get Email Log: the emails of a day",
    tags=["emails"],
)
def email_log_day(request, key: str, year: str, month: str, day: str, q: Query[EmailLogQuery]):
    start_at, end_at = period(year, month, day)
    return email_log(request.auth, key, start_at, end_at, q)


# Ticket list ----------------------------------------------------------------------------------------------------


class TicketListQuery(Schema):
    userId: str | None = None  # the assignee: a user id, or a username
    createdBy: str | None = None  # the creator: a user id, or a username
    ticketNo: str | None = None
    dateFrom: str | None = None
    dateTo: str | None = None
    dateField: str | None = None
    start: str | None = None
    limit: str | None = None


def _user_filter(column: str, value: str) -> dict:
    value = value.strip()
    return {f"{column}_id": int(value)} if value.isdigit() else {f"{column}__username": value}


def ticket_list(user, key: str, q: TicketListQuery) -> dict:
    project = get_project_for(user, key)
    start = whole(q.start, "start", default=0, low=0)
    limit = whole(q.limit, "limit", default=DEFAULT_ROWS, low=1, high=MAX_ROWS)
    messages: list[str] = []
    qs = tickets_visible_to(user, Ticket.objects.filter(project=project))
    if q.userId:
        qs = qs.filter(**_user_filter("owner", q.userId))
    if q.createdBy:
        qs = qs.filter(**_user_filter("creator", q.createdBy))
    if q.ticketNo:
        qs = qs.filter(number=q.ticketNo.strip())
    if q.dateField and q.dateField not in DATE_FIELDS:
        raise Invalid(f"dateField is one of {', '.join(DATE_FIELDS)}", field="dateField")
    if q.dateFrom or q.dateTo:
        name = q.dateField or DEFAULT_DATE_FIELD
        if not q.dateField:
            messages.append(f"dateField not given: {DEFAULT_DATE_FIELD} used")
        column = DATE_FIELDS[name]
        low = moment(q.dateFrom, "dateFrom")[0] if q.dateFrom else None
        high, inclusive = moment(q.dateTo, "dateTo", end=True) if q.dateTo else (None, True)
        if low is not None and high is not None and (high < low or (high == low and not inclusive)):
            raise Invalid("dateFrom is after dateTo", field="dateFrom")
        if low is not None:
            qs = qs.filter(**{f"{column}__gte": low})
        if high is not None:
            qs = qs.filter(**{f"{column}__lte" if inclusive else f"{column}__lt": high})
    total = qs.count()
    rows = qs.select_related("project", "type", "owner", "creator").order_by("created_at", "id")[
        start : start + limit
    ]
    return {
        "rows": [payloads.ticket_object(payloads.ticket_values(t)) for t in rows],
        "totalCount": total,
        "messages": messages,
        "errors": [],
    }


@compat_api.get("/projects/{key}/tickets", summary="Get Ticket List", tags=["tickets"])
def tickets(request, key: str, q: Query[TicketListQuery]):
    return ticket_list(request.auth, key, q)
