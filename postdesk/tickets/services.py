"""The only place that changes tickets: creation (with its number), email assignment and the counters and timestamps
of the ticket list, closing, transfer."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F

from postdesk.core import clock
from postdesk.core.errors import Invalid
from postdesk.core.services import audit
from postdesk.tickets import numbers
from postdesk.tickets.models import Status, Substatus, Ticket


def create_ticket(
    project,
    *,
    title: str,
    ticket_type=None,
    owner=None,
    creator=None,
    record=None,
    description: str = "",
    by=None,
) -> Ticket:
    title = (title or "").strip()[:500]
    if not title:
        raise Invalid("a ticket needs a title", field="title")
    if ticket_type is not None and ticket_type.project_id != project.pk:
        raise Invalid("the ticket type belongs to another project", field="type")
    moment = clock.now()
    with transaction.atomic():
        number = numbers.next_number(project, moment.date())
        ticket = Ticket.objects.create(
            project=project,
            number=number,
            title=title,
            type=ticket_type,
            owner=owner,
            creator=creator or by,
            record=record,
            description=description,
            created_at=moment,
            last_open_time=moment,
            updated_at=moment,
        )
        audit(
            "ticket.create",
            actor=by,
            project=project,
            obj=ticket,
            after={"number": number, "title": title, "type": getattr(ticket_type, "export_value", None)},
        )
    return ticket


def count_email(ticket: Ticket, email) -> None:
    """Keep the ticket list's counters and timestamps when an email joins the ticket (received or sent)."""
    from postdesk.emails.models import Direction, Kind

    moment = email.date
    if email.direction == Direction.IN and email.kind == Kind.INBOUND:
        updates = {
            "received_count": F("received_count") + 1,
            "last_received_time": moment,
            "updated_at": clock.now(),
        }
        if ticket.first_received_time is None or moment < ticket.first_received_time:
            updates["first_received_time"] = moment
            ticket.first_received_time = moment
        if ticket.last_received_time is None or moment > ticket.last_received_time:
            ticket.last_received_time = moment
        else:
            updates.pop("last_received_time")
    elif email.direction == Direction.OUT and email.kind in (Kind.AGENT_REPLY, Kind.DISPOSITION):
        updates = {"sent_count": F("sent_count") + 1, "last_sent_time": moment, "updated_at": clock.now()}
        if ticket.first_sent_time is None:
            updates["first_sent_time"] = moment
            ticket.first_sent_time = moment
    else:
        return
    if ticket.first_received_time and ticket.first_sent_time and ticket.sla_seconds is None:
        sla = (ticket.first_sent_time - ticket.first_received_time).total_seconds()
        if sla >= 0:
            updates["sla_seconds"] = int(sla)
            ticket.sla_seconds = int(sla)
    Ticket.objects.filter(pk=ticket.pk).update(**updates)


def close_ticket(ticket: Ticket, *, substatus: str = Substatus.SUCCESSFUL, by=None) -> Ticket:
    if substatus not in (Substatus.SUCCESSFUL, Substatus.UNSUCCESSFUL):
        raise Invalid("a closed ticket is successful or unsuccessful", field="substatus")
    moment = clock.now()
    before = {"status": ticket.status, "substatus": ticket.substatus}
    ticket.status, ticket.substatus, ticket.last_close_time, ticket.updated_at = (
        Status.CLOSED,
        substatus,
        moment,
        moment,
    )
    ticket.save(update_fields=["status", "substatus", "last_close_time", "updated_at"])
    audit(
        "ticket.close",
        actor=by,
        project=ticket.project,
        obj=ticket,
        before=before,
        after={"status": ticket.status, "substatus": substatus},
    )
    return ticket


def email_joined(ticket: Ticket, email) -> None:
    """An email became part of the ticket (assigned, threaded in, or sent from it): counters, timestamps, the thread,
    and for customer mail 'new to its owner' (and a closed ticket opens again)."""
    from postdesk.emails.models import Direction, Thread

    count_email(ticket, email)
    if email.thread_id:
        Thread.objects.filter(pk=email.thread_id, ticket__isnull=True).update(ticket=ticket)
    if email.direction == Direction.IN:
        updates = {"unread": True, "updated_at": clock.now()}
        if ticket.status == Status.CLOSED:
            updates.update(status=Status.PARK, substatus=Substatus.WAITING4AGENT, last_open_time=clock.now())
        else:
            updates["substatus"] = Substatus.WAITING4AGENT
        Ticket.objects.filter(pk=ticket.pk).update(**updates)
    else:
        Ticket.objects.filter(pk=ticket.pk).update(substatus=Substatus.WAITING4ENTITY, updated_at=clock.now())
