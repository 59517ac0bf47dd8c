"""Mail arriving for a ticket while its mail is being deleted: the ticket is not deleted under it, and no email is left
pointing at a deleted ticket, thread or raw message."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import IntegrityError, connection, transaction

from postdesk.core import clock
from postdesk.emails.models import Email, MessageIdIndex, RawMessage, Status, Thread
from postdesk.inbound.models import IncomingMessage
from postdesk.outbound import sender
from postdesk.retention import services
from postdesk.retention.tests.conftest import T0, at, day, receive_at, run_retention
from postdesk.tickets import services as tickets
from postdesk.tickets.models import Ticket


def closed_ticket(forwarding, alice):
    """A ticket with a customer email (day 0) and an agent reply (day 1), closed on day 2."""
    first = receive_at(
        forwarding, T0, subject="Noisy fridge", body="It hums at night.", sender="carla@example.com"
    )
    ticket = at(T0, tickets.assign_email, first, title="Noisy fridge", by=alice)
    reply = at(day(1), tickets.reply, ticket, body="A technician comes.", by=alice)
    at(day(1), sender.deliver, [reply.pk])
    at(day(2), tickets.close_ticket, ticket, by=alice)
    ticket.refresh_from_db()
    return ticket, [first.pk, reply.pk]


def assert_consistent():
    """No row refers to a deleted one (the database's foreign keys check this too, at commit)."""
    threads = set(Thread.objects.values_list("id", flat=True))
    tickets_ = set(Ticket.objects.values_list("id", flat=True))
    raws = set(RawMessage.objects.values_list("id", flat=True))
    for email in Email.objects.all():
        assert email.thread_id is None or email.thread_id in threads, email
        assert email.ticket_id is None or email.ticket_id in tickets_, email
        assert email.raw_id is None or email.raw_id in raws, email
    for thread in Thread.objects.exclude(ticket=None):
        assert thread.ticket_id in tickets_
    assert set(MessageIdIndex.objects.values_list("thread_id", flat=True)) <= threads
    emails = set(Email.objects.values_list("id", flat=True))
    assert set(IncomingMessage.objects.exclude(email=None).values_list("email_id", flat=True)) <= emails


@pytest.mark.django_db
def test_a_customer_reply_arriving_between_selection_and_deletion_keeps_the_ticket_and_all_its_mail(
    forwarding, alice, sender_account, retention_days, monkeypatch
):
    ticket, old = closed_ticket(forwarding, alice)
    real = services._candidates
    arrived = []

    def then_mail_arrives(*args):
        got = real(*args)
        if got and not arrived:
            arrived.append(
                receive_at(
                    forwarding,
                    day(39),
                    subject=f"Re: Noisy fridge [{ticket.number}]",
                    body="It hums again.",
                    sender="carla@example.com",
                )
            )
        return got

    monkeypatch.setattr(services, "_candidates", then_mail_arrives)
    result = run_retention(day(40))
    ticket.refresh_from_db()
    assert arrived[0].ticket_id == ticket.pk and ticket.status == "park"
    assert set(Email.objects.filter(ticket=ticket).values_list("id", flat=True)) == {*old, arrived[0].pk}
    assert result.totals()["emails"] == 0 and result.totals()["tickets"] == 0
    assert_consistent()


@pytest.mark.django_db
def test_an_agent_reply_sent_between_selection_and_deletion_keeps_the_ticket_with_the_new_reply(
    forwarding, alice, sender_account, retention_days, monkeypatch
):
    ticket, old = closed_ticket(forwarding, alice)
    real = services._candidates
    sent = []

    def then_agent_replies(*args):
        got = real(*args)
        if got and not sent:
            reply = at(day(39), tickets.reply, ticket, body="Did it help?", by=alice)
            at(day(39), sender.deliver, [reply.pk])
            sent.append(reply)
        return got

    monkeypatch.setattr(services, "_candidates", then_agent_replies)
    run_retention(day(40))
    assert Ticket.objects.filter(pk=ticket.pk).exists()  # its newest email is 1 day old
    assert set(Email.objects.filter(ticket=ticket).values_list("id", flat=True)) == {sent[0].pk}
    assert not Email.objects.filter(pk__in=old).exists()
    assert_consistent()


@pytest.mark.django_db
def test_an_email_put_on_an_open_ticket_between_selection_and_deletion_stays(
    forwarding, alice, retention_days, monkeypatch
):
    loose = receive_at(forwarding, T0, subject="Loose", sender="lena@example.com")
    other = receive_at(forwarding, day(38), subject="Open case", sender="lena@example.com")
    open_ticket = at(day(38), tickets.assign_email, other, title="Open case", by=alice)
    real = services._candidates

    def then_assigned(*args):
        got = real(*args)
        if got:
            at(day(39), tickets.assign_email, Email.objects.get(pk=loose.pk), ticket=open_ticket, by=alice)
        return got

    monkeypatch.setattr(services, "_candidates", then_assigned)
    run_retention(day(40))
    assert Email.objects.get(pk=loose.pk).ticket_id == open_ticket.pk
    assert_consistent()


def _waiting_for_a_lock(seconds: float) -> None:
    """Give the other connection time to run into the batch's locks (PostgreSQL: until it waits on one)."""
    deadline = time.monotonic() + seconds
    if connection.vendor != "postgresql":
        time.sleep(min(seconds, 1.5))
        return
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
            if cursor.fetchone()[0]:
                return
        time.sleep(0.05)


@pytest.mark.django_db(transaction=True)
def test_mail_arriving_while_a_batch_holds_its_locks_leaves_a_consistent_state(
    forwarding, alice, sender_account, retention_days, monkeypatch
):
    from postdesk.inbound import processing
    from postdesk.inbound.intake import Delivery, store
    from postdesk.testing.factories import raw_message

    ticket, old = closed_ticket(forwarding, alice)
    real = services.erase_emails
    inside = threading.Event()
    stored: list[int] = []
    errors: list[BaseException] = []

    def erase_slowly(project, rows):
        inside.set()
        _waiting_for_a_lock(8)
        return real(project, rows)

    def deliver():
        try:
            assert inside.wait(10)
            raw = raw_message(
                subject=f"Re: Noisy fridge [{ticket.number}]",
                body="It hums again.",
                sender="carla@example.com",
                in_reply_to=Email.objects.get(pk=old[0]).message_id,
            )
            with transaction.atomic():
                stored.extend(
                    store(
                        Delivery(
                            raw=raw,
                            mail_from="carla@example.com",
                            rcpt_to=[forwarding.address],
                            accounts=[forwarding],
                        )
                    ).ids
                )
            try:
                processing.process(stored)
            except Exception as exc:  # PostgreSQL: the email pointed at the ticket deleted meanwhile
                errors.append(exc)
        finally:
            connection.close()

    clock.set_now(day(40))
    monkeypatch.setattr(services, "erase_emails", erase_slowly)
    worker = threading.Thread(target=deliver)
    try:
        worker.start()
        run_retention(day(40))
    finally:
        worker.join(30)
    monkeypatch.undo()
    assert not worker.is_alive()
    # what the worker's recovery does with messages whose processing failed or did not finish
    pending = list(IncomingMessage.objects.exclude(state="done").values_list("id", flat=True))
    if pending:
        IncomingMessage.objects.filter(pk__in=pending).update(state="pending")
        processing.process(pending)
    # PostgreSQL: processing may have failed at its commit (its email pointed at the deleted ticket): nothing half-done
    assert all(isinstance(exc, IntegrityError) for exc in errors), errors
    new = IncomingMessage.objects.get(pk=stored[0]).email
    assert new is not None and new.status == Status.NEW
    if Ticket.objects.filter(
        pk=ticket.pk
    ).exists():  # the new email won: the ticket reopened and keeps its mail
        assert new.ticket_id == ticket.pk
        assert set(Email.objects.filter(ticket=ticket).values_list("id", flat=True)) == {*old, new.pk}
    else:  # the batch won: the old mail and the ticket went; the new email starts afresh, for the queue
        assert new.ticket_id is None and not Email.objects.filter(pk__in=old).exists()
    assert_consistent()
    run_retention(day(40))  # and a second run finds everything in order
    assert Email.objects.filter(pk=new.pk).exists()
    assert_consistent()
