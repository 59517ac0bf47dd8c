"""Tickets in the API: the ticket list, one ticket with its emails in thread order, assigning an email, replying,
closing, transferring. Same permissions as the UI (tickets.access, emails.access)."""

from __future__ import annotations

import base64
import datetime as dt

from django.db import transaction
from django.db.models import Q
from ninja import Query, Router, Schema, Status

from postdesk.accounts.models import User
from postdesk.core import clock
from postdesk.core.errors import Invalid, NotFound
from postdesk.core.schema import Moment
from postdesk.emails.access import get_email_for
from postdesk.emails.api import EmailItem, item, project_key
from postdesk.emails.models import Email
from postdesk.mailboxes.models import EmailAccount
from postdesk.tickets import services
from postdesk.tickets.access import get_ticket_for, tickets_visible_to
from postdesk.tickets.models import Substatus, Ticket

router = Router(tags=["tickets"])


class TicketOut(Schema):
    number: str
    id: int
    project: str
    type: str | None
    type_label: str | None
    title: str
    agent: str | None
    status: str
    substatus: str
    first_open_time: dt.datetime
    first_sent_time: dt.datetime | None
    last_sent_time: dt.datetime | None
    first_received_time: dt.datetime | None
    last_received_time: dt.datetime | None
    sent_count: int
    received_count: int
    sla_seconds: int | None
    last_close_time: dt.datetime | None
    soft_deadline: dt.datetime | None
    record_id: int | None


class TicketDetail(TicketOut):
    description: str
    emails: list[EmailItem]


class TicketPage(Schema):
    items: list[TicketOut]
    next_cursor: str | None


class TicketFilters(Schema):
    project: str | None = None
    type: str | None = None
    agent: str | None = None
    status: str | None = None
    date_from: Moment | None = None
    date_to: Moment | None = None
    q: str | None = None
    limit: int = 50
    cursor: str | None = None


class NewTicket(Schema):
    title: str | None = None
    type: str | None = None
    create_record: bool = False


class AssignIn(Schema):
    ticket: str | None = None
    new: NewTicket | None = None


class ReplyIn(Schema):
    body: str = ""
    template: str | None = None
    sender_account: str | None = None
    cc: list[str] = []
    bcc: list[str] = []
    in_reply_to: int | None = None
    opened_at: Moment | None = None
    force: bool = False


class CloseIn(Schema):
    substatus: str = Substatus.SUCCESSFUL


class TransferIn(Schema):
    agent: str


def ticket_out(t: Ticket) -> dict:
    return {
        "number": t.number,
        "id": t.pk,
        "project": project_key(t.project_id),
        "type": t.type.export_value if t.type_id else None,
        "type_label": t.type.label if t.type_id else None,
        "title": t.title,
        "agent": t.owner.username if t.owner_id else None,
        "status": t.status,
        "substatus": t.substatus,
        "first_open_time": t.created_at,
        "first_sent_time": t.first_sent_time,
        "last_sent_time": t.last_sent_time,
        "first_received_time": t.first_received_time,
        "last_received_time": t.last_received_time,
        "sent_count": t.sent_count,
        "received_count": t.received_count,
        "sla_seconds": t.sla_seconds,
        "last_close_time": t.last_close_time,
        "soft_deadline": t.soft_deadline,
        "record_id": t.record_id,
    }


def _cursor(t: Ticket) -> str:
    return base64.urlsafe_b64encode(f"{t.created_at.isoformat()}|{t.pk}".encode()).decode().rstrip("=")


def _uncursor(value: str) -> tuple[dt.datetime, int]:
    try:
        text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        moment, pk = text.rsplit("|", 1)
        return clock.parse_iso(moment), int(pk)
    except (ValueError, UnicodeDecodeError):
        raise Invalid("not a cursor returned by this API", field="cursor")


def filtered_tickets(user, f: TicketFilters):
    """Filters by ids looked up first, and only nullable joins (an inner join on project made SQLite read the
    project table first and sort every ticket of the project)."""
    from postdesk.accounts.models import User
    from postdesk.projects.models import Project, TicketType

    qs = tickets_visible_to(user, Ticket.objects.select_related("type", "owner"))
    project_id = None
    if f.project:
        project_id = Project.objects.filter(key=f.project).values_list("id", flat=True).first() or -1
        qs = qs.filter(project_id=project_id)
    if f.type:
        types = TicketType.objects.filter(Q(export_value=f.type) | Q(label=f.type))
        if project_id is not None:
            types = types.filter(project_id=project_id)
        qs = qs.filter(type_id__in=list(types.values_list("id", flat=True)))
    if f.agent:
        qs = qs.filter(owner_id=User.objects.filter(username=f.agent).values_list("id", flat=True).first() or -1)
    if f.status:
        if f.status not in ("park", "closed"):
            raise Invalid("status is park or closed", field="status")
        qs = qs.filter(status=f.status)
    if f.date_from:
        qs = qs.filter(created_at__gte=f.date_from)
    if f.date_to:
        qs = qs.filter(created_at__lt=f.date_to)
    if f.q:
        qs = qs.filter(Q(number__icontains=f.q) | Q(title__icontains=f.q))
    return qs


@router.get("/tickets", response=TicketPage, summary="The ticket list")
def list_tickets(request, filters: Query[TicketFilters]):
    if not 1 <= filters.limit <= 500:
        raise Invalid("limit must be between 1 and 500", field="limit")
    qs = filtered_tickets(request.auth, filters)
    if filters.cursor:
        moment, pk = _uncursor(filters.cursor)
        qs = qs.filter(Q(created_at__lt=moment) | Q(created_at=moment, id__lt=pk))
    rows = list(qs.order_by("-created_at", "-id")[: filters.limit + 1])
    more = len(rows) > filters.limit
    rows = rows[: filters.limit]
    return {
        "items": [ticket_out(t) for t in rows],
        "next_cursor": _cursor(rows[-1]) if more and rows else None,
    }


def ticket_detail(t: Ticket) -> dict:
    emails = Email.objects.filter(ticket=t).select_related(
        "project", "queue", "locked_by", "ticket", "sent_by"
    )
    return {
        **ticket_out(t),
        "description": t.description,
        "emails": [item(e) for e in emails.order_by("date", "id")],
    }


@router.get("/tickets/{number}", response=TicketDetail, summary="One ticket with its emails in thread order")
def read_ticket(request, number: str):
    return ticket_detail(
        get_ticket_for(request.auth, number, Ticket.objects.select_related("project", "type", "owner"))
    )


@router.post(
    "/emails/{email_id}/ticket", response=TicketOut, summary="Assign an email to a ticket, or a new one"
)
def assign(request, email_id: int, payload: AssignIn):
    user = request.auth
    email = get_email_for(user, email_id, Email.objects.select_related("project", "ticket"))
    if (payload.ticket is None) == (payload.new is None):
        raise Invalid("give either 'ticket' (a ticket number) or 'new'", field="ticket")
    with transaction.atomic():
        if payload.ticket is not None:
            ticket = get_ticket_for(user, payload.ticket)
            ticket = services.assign_email(email, ticket=ticket, by=user)
        else:
            ticket_type = None
            if payload.new.type:
                ticket_type = email.project.ticket_types.filter(
                    Q(export_value=payload.new.type) | Q(label=payload.new.type)
                ).first()
                if ticket_type is None:
                    raise Invalid(f"no ticket type {payload.new.type!r} in this project", field="new.type")
            record = None
            if payload.new.create_record:
                from postdesk.records.services import create_record

                record = create_record(email.project, name=email.from_name, email=email.from_address, by=user)
            ticket = services.assign_email(
                email, title=payload.new.title, ticket_type=ticket_type, record=record, by=user
            )
    return ticket_out(Ticket.objects.select_related("project", "type", "owner").get(pk=ticket.pk))


@router.post(
    "/tickets/{number}/reply", response={201: EmailItem}, summary="Reply on a ticket (queued for sending)"
)
def reply(request, number: str, payload: ReplyIn):
    user = request.auth
    ticket = get_ticket_for(user, number, Ticket.objects.select_related("project"))  # its record only when needed
    template = None
    if payload.template:
        template = ticket.project.templates.filter(name=payload.template).first()
        if template is None:
            raise Invalid(f"no template {payload.template!r}", field="template")
    account = None
    if payload.sender_account:
        account = EmailAccount.objects.filter(name=payload.sender_account).first()
        if account is None:
            raise Invalid(f"no account {payload.sender_account!r}", field="sender_account")
    in_reply_to = None
    if payload.in_reply_to is not None:
        in_reply_to = ticket.emails.filter(pk=payload.in_reply_to).select_related("thread").first()
        if in_reply_to is None:
            raise Invalid("that email is not on this ticket", field="in_reply_to")
    with transaction.atomic():
        email = services.reply(
            ticket,
            body=payload.body,
            by=user,
            template=template,
            sender_account=account,
            cc=payload.cc,
            bcc=payload.bcc,
            in_reply_to=in_reply_to,
            opened_at=payload.opened_at,
            force=payload.force,
        )
    return Status(201, item(email))  # the instance holds its ticket and sender: no second query


@router.post("/tickets/{number}/close", response=TicketOut, summary="Close a ticket")
def close(request, number: str, payload: CloseIn | None = None):
    ticket = get_ticket_for(request.auth, number, Ticket.objects.select_related("project", "type", "owner"))
    with transaction.atomic():
        services.close_ticket(
            ticket, substatus=(payload.substatus if payload else Substatus.SUCCESSFUL), by=request.auth
        )
    return ticket_out(ticket)


@router.post("/tickets/{number}/transfer", response=TicketOut, summary="Hand a ticket to another agent")
def transfer(request, number: str, payload: TransferIn):
    ticket = get_ticket_for(request.auth, number, Ticket.objects.select_related("project", "type", "owner"))
    to_user = User.objects.filter(username=payload.agent, is_active=True).first()
    if to_user is None:
        raise NotFound(f"no user {payload.agent!r}", field="agent")
    with transaction.atomic():
        services.transfer_ticket(ticket, to_user, by=request.auth)
    return ticket_out(ticket)
