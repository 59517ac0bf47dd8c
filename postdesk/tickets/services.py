"""The only place that changes tickets: creation (with its number), email assignment and the counters and timestamps
of the ticket list, closing, transfer."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import F, Q

from postdesk.core import clock
from postdesk.core.errors import Conflict, Forbidden, Invalid
from postdesk.core.services import audit
from postdesk.integrations import events as webhook_events
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
        webhook_events.ticket_added(ticket)
    return ticket


def count_email(ticket: Ticket, email, *, also: dict | None = None) -> None:
    """Keep the ticket list's counters and timestamps when an email joins the ticket (received or sent); ``also``:
    more column updates for the same statement."""
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
        updates = {}
    if updates and ticket.first_received_time and ticket.first_sent_time and ticket.sla_seconds is None:
        sla = (ticket.first_sent_time - ticket.first_received_time).total_seconds()
        if sla >= 0:
            updates["sla_seconds"] = int(sla)
            ticket.sla_seconds = int(sla)
    updates.update(also or {})
    if updates:
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
    webhook_events.ticket_updated(ticket, ["status", "substatus", "lastCloseTime"])
    return ticket


def email_joined(ticket: Ticket, email) -> None:
    """An email became part of the ticket (assigned, threaded in, or sent from it): counters, timestamps, the thread,
    and for customer mail 'new to its owner' (and a closed ticket opens again)."""
    from postdesk.emails.models import Direction, Thread

    if email.thread_id:
        Thread.objects.filter(pk=email.thread_id, ticket__isnull=True).update(ticket=ticket)
    if email.direction == Direction.IN:
        updates = {"unread": True, "updated_at": clock.now()}
        if ticket.status == Status.CLOSED:
            updates.update(status=Status.PARK, substatus=Substatus.WAITING4AGENT, last_open_time=clock.now())
        else:
            updates["substatus"] = Substatus.WAITING4AGENT
    else:
        updates = {"substatus": Substatus.WAITING4ENTITY, "updated_at": clock.now()}
    count_email(ticket, email, also=updates)  # one UPDATE of the ticket
    webhook_events.emails_joined(ticket, [email])


# The agent workspace: opening (locking), assigning, replying, transferring -----------------------------------------

LOCK_TIMEOUT = dt.timedelta(minutes=15)


def lock_is_live(email) -> bool:
    return bool(email.locked_by_id and email.locked_at and email.locked_at > clock.now() - LOCK_TIMEOUT)


def open_email(email, user):
    """An agent opens an email: with 'Lock emails to agents' on it is locked to them (Locked by, Locked at) and
    disappears from other agents' lists; the agent is in Email status. Someone else's live lock: 409."""
    from postdesk.accounts.models import AgentState
    from postdesk.accounts.services import set_state
    from postdesk.emails.models import Email, Status

    project = email.project
    if user.is_supervisor:  # supervisors look without taking the email from the agents (no lock, no Email status)
        return email
    if email.ticket_id is None and email.status == Status.NEW and project.lock_emails:
        if lock_is_live(email) and email.locked_by_id != user.pk:
            if not user.is_supervisor:
                raise Conflict(f"{email.locked_by.display_name} is working on this email", field="email")
        else:
            moment = clock.now()
            updated = (
                Email.objects.filter(pk=email.pk)
                .filter(
                    Q(locked_by__isnull=True) | Q(locked_by=user) | Q(locked_at__lt=moment - LOCK_TIMEOUT)
                )
                .update(locked_by=user, locked_at=moment)
            )
            if not updated and not user.is_supervisor:
                raise Conflict("another agent just opened this email", field="email")
            if updated:
                email.locked_by, email.locked_at = user, moment
    set_state(user, AgentState.EMAIL, project=project, email=email)
    return email


def release_email(email, user=None) -> None:
    from postdesk.emails.models import Email

    qs = Email.objects.filter(pk=email.pk)
    if user is not None:
        qs = qs.filter(locked_by=user)
    qs.update(locked_by=None, locked_at=None)


def release_stale_locks() -> int:
    from postdesk.emails.models import Email

    return Email.objects.filter(locked_by__isnull=False, locked_at__lt=clock.now() - LOCK_TIMEOUT).update(
        locked_by=None, locked_at=None
    )


def assign_email(
    email, *, ticket: Ticket | None = None, title: str | None = None, ticket_type=None, record=None, by=None
) -> Ticket:
    """Assign an email (and the rest of its thread not yet on a ticket) to an existing ticket, or to a new one
    (type from the project's ticket types, title defaulting to the subject). The lock ends."""
    from postdesk.emails.models import Direction, Email

    project = email.project
    if email.ticket_id is not None:
        if ticket is not None and ticket.pk == email.ticket_id:
            return ticket
        raise Conflict(f"this email is already on ticket {email.ticket.number}", field="email")
    if ticket is None:
        if record is None and email.direction == Direction.IN:
            from postdesk.records.services import find_by_email

            record = find_by_email(project, email.from_address)
        ticket = create_ticket(
            project,
            title=title or email.subject or "(no subject)",
            ticket_type=ticket_type,
            owner=by,
            creator=by,
            record=record,
            by=by,
        )
    elif ticket.project_id != project.pk:
        raise Invalid("the ticket belongs to another project", field="ticket")
    elif record is not None and ticket.record_id is None:
        Ticket.objects.filter(pk=ticket.pk).update(record=record)
    siblings = [email]
    if email.thread_id:
        siblings += list(
            Email.objects.filter(thread_id=email.thread_id, ticket__isnull=True).exclude(pk=email.pk)
        )
    for item in sorted(siblings, key=lambda e: e.date):
        Email.objects.filter(pk=item.pk).update(ticket=ticket, locked_by=None, locked_at=None)
        item.ticket = ticket
        count_email(ticket, item)
    if email.thread_id:
        from postdesk.emails.models import Thread

        Thread.objects.filter(pk=email.thread_id).update(ticket=ticket)
    audit("email.assign", actor=by, project=project, obj=email, after={"ticket": ticket.number})
    ticket.refresh_from_db()
    webhook_events.emails_joined(ticket, siblings)
    return ticket


def close_email(email, by=None) -> None:
    """Handle an email without a ticket (spam, nothing to do): it leaves the lists; the lock ends."""
    from postdesk.emails.models import Email, Status

    if email.ticket_id is not None:
        raise Conflict("the email is on a ticket: close the ticket instead", field="email")
    Email.objects.filter(pk=email.pk).update(status=Status.CLOSED, locked_by=None, locked_at=None)
    audit("email.close", actor=by, project=email.project, obj=email)


def transfer_ticket(ticket: Ticket, to_user, by=None) -> Ticket:
    """Change pref user: hand a ticket to another agent of the project."""
    _check_transfer(ticket.project, to_user)
    before = ticket.owner.username if ticket.owner_id else None
    Ticket.objects.filter(pk=ticket.pk).update(owner=to_user, unread=True, updated_at=clock.now())
    ticket.owner = to_user
    audit(
        "ticket.transfer",
        actor=by,
        project=ticket.project,
        obj=ticket,
        before={"owner": before},
        after={"owner": to_user.username},
    )
    webhook_events.ticket_updated(ticket, ["userId", "userName"])
    return ticket


def transfer_email(email, to_user, by=None):
    """Change pref user for an email not yet on a ticket: it is locked to the other agent."""
    from postdesk.emails.models import Email

    _check_transfer(email.project, to_user)
    Email.objects.filter(pk=email.pk).update(locked_by=to_user, locked_at=clock.now())
    audit("email.transfer", actor=by, project=email.project, obj=email, after={"to": to_user.username})
    return email


def _check_transfer(project, to_user) -> None:
    from postdesk.projects.models import ProjectMember

    if not project.change_pref_user:
        raise Forbidden("the Change pref user setting is off in this project", field="agent")
    if not (to_user.is_supervisor or ProjectMember.objects.filter(project=project, user=to_user).exists()):
        raise Invalid(f"{to_user.username} is not an agent of project {project.key}", field="agent")


def collision(ticket: Ticket, user, since) -> list:
    """Outbound emails others sent on this ticket since `since` (the collision warning before sending)."""
    from postdesk.emails.models import Direction

    if since is None:
        return []
    return list(
        ticket.emails.filter(direction=Direction.OUT, date__gt=since)
        .exclude(sent_by=user)
        .select_related("sent_by")
        .order_by("date")
    )


REPLIED_FIELDS = (
    "project_id", "ticket_id", "direction", "date", "from_address", "from_name", "reply_to", "subject", "first_line",
    "message_id", "references", "content__text", "thread__project_id", "thread__subject", "thread__ticket_id",
    "thread__created_at", "thread__last_message_at", "thread__merged_into_id",
)


def reply(
    ticket: Ticket,
    *,
    body: str,
    by,
    template=None,
    sender_account=None,
    cc=None,
    bcc=None,
    in_reply_to=None,
    attachments=None,
    opened_at=None,
    force: bool = False,
):
    """An agent's reply on a ticket, through the outbound pipeline, threaded with In-Reply-To/References."""
    from postdesk.emails.models import Direction, Kind
    from postdesk.mailboxes.services import default_sender_for
    from postdesk.outbound.services import queue_email, render

    project = ticket.project
    if not (body or "").strip() and template is None:
        raise Invalid("the reply is empty", field="body")
    if template is not None and (
        template.project_id != project.pk or (not template.visible_to_agents and not by.is_supervisor)
    ):
        raise Invalid("no such template for this project", field="template")
    links = [link for link in project.sender_links.select_related("account") if link.account.enabled]
    allowed = {link.account_id: link.account for link in links}
    if sender_account is None:
        sender_account = default_sender_for(project, links)
    elif sender_account.pk not in allowed:
        raise Invalid(
            f"{sender_account.name} is not a sender account of this project", field="sender_account"
        )
    if sender_account is None:
        raise Invalid("the project has no sender account", field="sender_account")
    others = collision(ticket, by, opened_at)
    if others and not force:
        names = ", ".join(sorted({e.sent_by.display_name if e.sent_by else "someone" for e in others}))
        raise Conflict(f"{names} replied to this ticket since you opened it", field="collision")
    if in_reply_to is None:
        in_reply_to = (
            ticket.emails.filter(direction=Direction.IN)
            .select_related("content", "thread")
            .only(*REPLIED_FIELDS)  # what a reply reads of the email it answers: the wide row costs ~0.4 ms more
            .order_by("-date")
            .first()
        )
    elif in_reply_to.ticket_id != ticket.pk:
        raise Invalid("that email is not on this ticket", field="in_reply_to")
    customer = (in_reply_to.reply_to or in_reply_to.from_address) if in_reply_to is not None else None
    if customer is None and ticket.record_id and ticket.record.email:
        customer = ticket.record.email
    if not customer:
        raise Invalid("no customer address to reply to", field="to")
    fields = {
        "subject": ticket.title,
        "name": _customer_name(in_reply_to, ticket),
        "agent": by.display_name,
        "ticket": ticket.number,
        "email": customer,
    }
    text = body or ""
    subject = (
        f"Re: {in_reply_to.subject}" if in_reply_to is not None and in_reply_to.subject else ticket.title
    )
    cc, bcc = list(cc or []), list(bcc or [])
    if template is not None:
        rendered = render(template.body, fields)
        text = f"{text}\n\n{rendered}".strip() if text.strip() else rendered
        subject = render(template.subject, fields) or subject
        cc += [a for a in template.cc if a not in cc]
        bcc += [a for a in template.bcc if a not in bcc]
    if ticket.number not in subject:
        subject = f"{subject} [{ticket.number}]"
    if in_reply_to is not None:
        text = f"{text.rstrip()}\n\n{quote(in_reply_to)}"
    email = queue_email(
        project=project,
        account=sender_account,
        kind=Kind.AGENT_REPLY,
        to=[customer],
        cc=cc,
        bcc=bcc,
        subject=subject,
        text=text,
        reply_to_email=in_reply_to,
        ticket=ticket,
        sent_by=by,
        template=template,
        attachments=attachments,
        thread=in_reply_to.thread if in_reply_to is not None else None,
    )
    Ticket.objects.filter(pk=ticket.pk).update(unread=False)
    audit("ticket.reply", actor=by, project=project, obj=ticket, after={"email": email.pk})
    return email


def _customer_name(email, ticket) -> str:
    if email is not None and email.from_name:
        return email.from_name
    if ticket.record_id and ticket.record.name:
        return ticket.record.name
    return ""


def quote(email) -> str:
    """The previous message quoted below a reply (plain text, '> ' prefixed, attribution line first)."""
    content = getattr(email, "content", None)
    text = (content.text if content else "") or email.first_line
    who = f"{email.from_name} <{email.from_address}>" if email.from_name else email.from_address
    lines = text.strip().splitlines()[:200]
    quoted = "\n".join(f"> {line}" if line else ">" for line in lines)
    return f"On {email.date:%Y-%m-%d %H:%M} UTC, {who} wrote:\n{quoted}"


def allow_images(email, by=None) -> None:
    """The per-email 'show images' choice: remote images of this email load from now on (for everyone who sees it)."""
    from postdesk.emails.models import Email

    if email.show_images:
        return
    Email.objects.filter(pk=email.pk).update(show_images=True)
    email.show_images = True
    audit("email.show_images", actor=by, project=email.project, obj=email)


def mark_read(ticket: Ticket, user) -> None:
    """The owner looked at the ticket: it is no longer shown as unread (bold) in their list."""
    if ticket.unread and ticket.owner_id == user.pk:
        Ticket.objects.filter(pk=ticket.pk, unread=True).update(unread=False)
        ticket.unread = False
