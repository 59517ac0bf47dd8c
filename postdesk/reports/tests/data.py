"""Rows for the reports tests: outbound emails, tickets made through tickets.services (so their counters and SLA are
the real ones), and many emails inserted in bulk for the export tests."""

from __future__ import annotations

import datetime as dt
import itertools

from postdesk.core import clock
from postdesk.emails.models import Direction, Email, EmailContent, Kind, Status
from postdesk.testing.factories import inbound_email

_n = itertools.count(1)


def index_addresses(emails) -> None:
    """Add rows made directly (factories) to the address index the sender and recipient filters read (SQLite; on
    PostgreSQL the columns themselves are indexed), unless they are in it already."""
    from django.db import connection

    from postdesk.emails import search

    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT rowid FROM {search.SQLITE_ADDRESS_TABLE}")
        known = {row[0] for row in cursor.fetchall()}
    search.index_addresses(
        [(e.pk, e.from_name, e.from_address, e.to, e.cc) for e in emails if e.pk not in known]
    )


def outbound_email(
    project,
    *,
    sent_by,
    subject="Re: Help please",
    date=None,
    to=None,
    kind=Kind.AGENT_REPLY,
    status=Status.SENT,
    ticket=None,
    thread=None,
):
    email = Email.objects.create(
        project=project,
        direction=Direction.OUT,
        kind=kind,
        status=status,
        date=date or clock.now(),
        from_address="support@acme.test",
        from_name="Acme Support",
        to=to or ["customer@example.com"],
        subject=subject,
        sent_by=sent_by,
        thread=thread,
        message_id=f"<out-{next(_n)}@acme.test>",
    )
    EmailContent.objects.create(email=email, text="Thanks for writing.")
    if ticket is not None:
        from postdesk.tickets.services import email_joined

        Email.objects.filter(pk=email.pk).update(ticket=ticket)
        email.ticket = ticket
        email_joined(ticket, email)
    return email


def ticket_with_reply(project, agent, *, subject, received, answered_after=None, ticket_type=None):
    """A customer email received at `received`, made a ticket by `agent`, answered `answered_after` later."""
    from postdesk.tickets.services import assign_email

    email = inbound_email(project, subject=subject, date=received)
    with clock.frozen(received):
        ticket = assign_email(email, ticket_type=ticket_type, by=agent)
    if answered_after is not None:
        outbound_email(
            project,
            sent_by=agent,
            subject=f"Re: {subject}",
            date=received + answered_after,
            ticket=ticket,
            thread=email.thread,
        )
    ticket.refresh_from_db()
    return ticket


EMAIL_COLUMNS = [
    "project_id",
    "direction",
    "kind",
    "status",
    "date",
    "created_at",
    "mail_from",
    "from_address",
    "from_name",
    "to",
    "cc",
    "bcc",
    "reply_to",
    "subject",
    "first_line",
    "size",
    "has_attachments",
    "language",
    "queue_id",
    "message_id",
    "in_reply_to",
    "references",
    "parse_error",
    "has_remote_images",
    "show_images",
    "is_spam",
    "return_path",
    "attempts",
    "smtp_response",
    "event_flags",
]


def bulk_emails(project, count: int, *, start: dt.datetime, same_moment_every: int = 1) -> None:
    """`count` inbound emails, one second apart going back from `start` (groups of `same_moment_every` share a
    moment, to exercise the id tie-break), inserted in plain SQL."""
    from postdesk.core.sqlbulk import db_datetime, db_json, insert

    queue = project.default_queue.pk
    rows = []
    for i in range(count):
        moment = db_datetime(start - dt.timedelta(seconds=i // same_moment_every))
        rows.append(
            (
                project.pk,
                "in",
                "inbound",
                "new",
                moment,
                moment,
                "",
                f"c{i}@example.com",
                f"Customer {i}",
                db_json(["support@acme.test"]),
                "[]",
                "[]",
                "",
                f"Order question {i}",
                "Hello",
                100,
                False,
                "en",
                queue,
                f"<bulk-{i}@example.com>",
                "",
                "",
                "",
                False,
                False,
                False,
                "",
                0,
                "",
                0,
            )
        )
        if len(rows) == 5000:
            insert(Email, EMAIL_COLUMNS, rows, False)
            rows = []
    insert(Email, EMAIL_COLUMNS, rows, False)
