"""Test data built through the real paths where it matters (processing raw bytes), or directly when a test only needs
rows to exist."""

from __future__ import annotations

import itertools

from postdesk.core import clock

_counter = itertools.count(1)


def raw_message(
    *,
    subject: str = "Where is my order?",
    sender: str = "customer@example.com",
    name: str = "Carla Customer",
    to: str = "support@acme.test",
    body: str = "Hello, where is my order?",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    headers: dict | None = None,
    html: str | None = None,
) -> bytes:
    """A small, well-formed message as bytes (CRLF)."""
    from email.header import Header

    n = next(_counter)
    message_id = message_id or f"<msg-{n}@example.com>"
    lines = [
        f"From: {Header(name, 'utf-8').encode()} <{sender}>",
        f"To: {to}",
        f"Subject: {Header(subject, 'utf-8').encode()}",
        f"Message-ID: {message_id}",
        "Date: Thu, 26 Nov 2026 10:00:00 +0000",
        "MIME-Version: 1.0",
    ]
    if in_reply_to:
        lines.append(f"In-Reply-To: {in_reply_to}")
    if references:
        lines.append(f"References: {references}")
    for key, value in (headers or {}).items():
        lines.append(f"{key}: {value}")
    if html is None:
        lines += ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit", "", body]
    else:
        boundary = f"b{n}"
        lines += [
            f'Content-Type: multipart/alternative; boundary="{boundary}"',
            "",
            f"--{boundary}",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: 8bit",
            "",
            body,
            f"--{boundary}",
            "Content-Type: text/html; charset=utf-8",
            "Content-Transfer-Encoding: 8bit",
            "",
            html,
            f"--{boundary}--",
        ]
    return ("\r\n".join(lines) + "\r\n").encode()


def receive(account, raw: bytes, *, mail_from: str = "customer@example.com", rcpt: str | None = None):
    """Store a message as the listener would and process it now; returns the Email."""
    from django.db import transaction

    from postdesk.inbound import processing
    from postdesk.inbound.intake import Delivery, store
    from postdesk.inbound.models import IncomingMessage

    with transaction.atomic():
        stored = store(
            Delivery(raw=raw, mail_from=mail_from, rcpt_to=[rcpt or account.address], accounts=[account])
        )
    processing.process(stored.ids)
    row = IncomingMessage.objects.select_related("email").get(pk=stored.ids[0])
    return row.email


def inbound_email(
    project,
    *,
    subject: str = "Help please",
    sender: str = "customer@example.com",
    queue=None,
    text: str = "Hello, I need help.",
    language: str = "en",
    date=None,
):
    """An inbound email row without going through parsing (for list and permission tests)."""
    from postdesk.emails.models import Direction, Email, EmailContent, Kind, Status, Thread

    moment = date or clock.now()
    thread = Thread.objects.create(
        project=project, subject=subject, created_at=moment, last_message_at=moment
    )
    email = Email.objects.create(
        project=project,
        direction=Direction.IN,
        kind=Kind.INBOUND,
        status=Status.NEW,
        date=moment,
        from_address=sender,
        from_name="Carla Customer",
        to=["support@acme.test"],
        subject=subject,
        first_line=text[:200],
        language=language,
        queue=queue or project.default_queue,
        thread=thread,
        message_id=f"<f-{next(_counter)}@example.com>",
    )
    EmailContent.objects.create(email=email, text=text)
    from postdesk.emails import search

    search.index([(email.pk, project.pk, subject, text, f"{email.from_name} {sender}")])
    search.index_addresses([(email.pk, email.from_name, email.from_address, email.to, email.cc)])
    return email
