"""Runs: batches, a second run, a dry run, a run killed midway and run again, the record and audit of each run, the
command line and the daily job."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from postdesk.campaigns.models import Suppression
from postdesk.core.models import AuditEvent
from postdesk.emails.models import Attachment, Email, MessageIdIndex, RawMessage, Thread
from postdesk.inbound.models import IncomingMessage
from postdesk.records.models import Record
from postdesk.retention import services
from postdesk.retention.models import RetentionRun
from postdesk.retention.tests.conftest import T0, at, day, found, receive_at, run_retention, with_attachment
from postdesk.tickets import services as tickets
from postdesk.tickets.models import Ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def mailbag(forwarding, alice, retention_days):
    """Twelve conversations received over twelve days: odd ones on tickets closed the next day (some sharing a
    customer record), every third with an attachment, one ticket still open, and replies in a few threads."""
    from postdesk.records.services import create_record

    made = []
    for i in range(12):
        sender = f"customer{i % 5}@example.com"
        if i % 2 and not Record.objects.filter(email=sender).exists():
            at(day(i), create_record, forwarding.project, name=f"Customer {i % 5}", email=sender)
        raw = (
            with_attachment(
                subject=f"Question {i}",
                body=f"Body of conversation {i} about tapir{i}",
                sender=sender,
                filename=f"file{i}.txt",
                content=f"attachment {i}".encode(),
                message_id=f"<bag-{i}@example.com>",
            )
            if i % 3 == 0
            else None
        )
        first = receive_at(
            forwarding,
            day(i),
            raw=raw,
            subject=f"Question {i}",
            body=f"Body of conversation {i} about tapir{i}",
            sender=sender,
            message_id=f"<bag-{i}@example.com>",
        )
        made.append(first)
        if i % 4 == 1:
            receive_at(
                forwarding,
                day(i + 0.5),
                subject=f"Re: Question {i}",
                body=f"More about tapir{i}",
                sender=sender,
                message_id=f"<bag-{i}-r@example.com>",
                in_reply_to=f"<bag-{i}@example.com>",
            )
        if i % 2:
            ticket = at(day(i), tickets.assign_email, first, title=f"Question {i}", by=alice)
            if i != 7:
                at(day(i + 1), tickets.close_ticket, ticket, by=alice)
    return made


def snapshot() -> dict:
    """Everything retention may change, by id (what stays) and value (what was anonymised)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM emails_fts_docsize ORDER BY id"
            if connection.vendor == "sqlite"
            else "SELECT email_id FROM emails_search ORDER BY email_id"
        )
        indexed = [row[0] for row in cursor.fetchall()]
    return {
        "emails": sorted(Email.objects.values_list("id", flat=True)),
        "tickets": sorted(Ticket.objects.values_list("id", flat=True)),
        "threads": sorted(Thread.objects.values_list("id", flat=True)),
        "raws": sorted(RawMessage.objects.values_list("id", flat=True)),
        "attachments": sorted(Attachment.objects.values_list("id", flat=True)),
        "incoming": sorted(IncomingMessage.objects.values_list("id", flat=True)),
        "message_ids": sorted(MessageIdIndex.objects.values_list("message_id", "thread_id", "email_id")),
        "records": sorted(
            (r.pk, r.name, r.email, r.phone, sorted(r.data.items()), r.anonymised_at is not None)
            for r in Record.objects.all()
        ),
        "suppressed": sorted(Suppression.objects.values_list("project_id", "address_hash", "reason")),
        "indexed": indexed,
        "search": [sorted(found(f"tapir{i}")) for i in range(12)],
    }


def test_the_same_run_in_batches_of_two_deletes_the_same_as_in_one_batch(mailbag):
    with transaction.atomic():
        whole = run_retention(day(40)).totals()
        expected = snapshot()
        transaction.set_rollback(True)
    batched = run_retention(day(40), batch_size=2).totals()
    assert batched == whole and snapshot() == expected
    assert whole["emails"] > 2 and whole["tickets"] >= 2


def test_a_second_run_at_the_same_moment_changes_nothing(mailbag):
    first = run_retention(day(40)).totals()
    state = snapshot()
    second = run_retention(day(40)).totals()
    assert any(first.values()) and not any(second.values())
    assert snapshot() == state


def test_a_dry_run_counts_what_a_run_deletes_and_changes_nothing(mailbag):
    before = snapshot()
    planned = run_retention(day(40), dry_run=True).totals()
    assert snapshot() == before
    done = run_retention(day(40)).totals()
    for key in ("emails", "tickets", "records", "raw_messages", "attachments", "events", "incoming"):
        assert planned[key] == done[key], key
    assert planned["emails"] > 0 and planned["records"] > 0 and planned["attachments"] > 0


@pytest.mark.parametrize("fail_after", [1, 3])
def test_a_run_killed_midway_then_run_again_ends_as_one_uninterrupted_run(mailbag, monkeypatch, fail_after):
    with transaction.atomic():
        run_retention(day(40))
        expected = snapshot()
        transaction.set_rollback(True)
    real = services._email_batch
    calls = []

    def dies_after_k_batches(*args):
        if len(calls) == fail_after:
            raise KeyboardInterrupt("killed")
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(services, "_email_batch", dies_after_k_batches)
    with pytest.raises(KeyboardInterrupt):
        run_retention(day(40), batch_size=2)
    killed = RetentionRun.objects.latest("id")
    assert killed.finished_at is None and "killed" in killed.error
    assert killed.counts["emails"] > 0  # the batches that committed are counted
    partial = snapshot()
    assert partial != expected and len(partial["emails"]) > len(expected["emails"])
    monkeypatch.setattr(services, "_email_batch", real)
    run_retention(day(40), batch_size=2)
    assert snapshot() == expected


def test_a_run_killed_in_the_sweeps_then_run_again_ends_as_one_uninterrupted_run(mailbag, monkeypatch):
    from postdesk.tickets.models import Ticket as T

    bare = at(day(0), tickets.create_ticket, mailbag[0].project, title="No mail at all")
    at(day(1), tickets.close_ticket, bare)
    assert T.objects.filter(pk=bare.pk).exists()
    with transaction.atomic():
        run_retention(day(40))
        expected = snapshot()
        transaction.set_rollback(True)
    assert bare.pk not in expected["tickets"]

    def dies(*args):
        raise RuntimeError("killed in the ticket sweep")

    monkeypatch.setattr(services, "_sweep_tickets", dies)
    with pytest.raises(RuntimeError):
        run_retention(day(40))
    monkeypatch.undo()
    run_retention(day(40))
    assert snapshot() == expected


def test_each_run_is_recorded_with_its_counts_and_audited(mailbag, project):
    result = run_retention(day(40))
    row = RetentionRun.objects.get(pk=result.run_id)
    assert row.finished_at is not None and not row.dry_run and row.as_of == day(40)
    assert row.counts == result.totals() and row.counts["emails"] > 0
    assert row.details["projects"]["101"]["counts"] == result.totals()
    event = AuditEvent.objects.get(action="retention.run", project=project)
    assert event.actor_name == "system" and event.object_id == str(row.pk)
    assert event.after["counts"] == result.totals() and event.after["days"] == 30


def test_a_dry_run_is_recorded_but_not_audited(mailbag):
    result = run_retention(day(40), dry_run=True)
    assert RetentionRun.objects.get(pk=result.run_id).dry_run
    assert not AuditEvent.objects.filter(action="retention.run").exists()


def test_the_command_prints_what_it_deleted(mailbag):
    out = io.StringIO()
    call_command("retention", "run", "--now", "2026-04-11T09:30:00Z", stdout=out)
    text = out.getvalue()
    assert "retention as of 2026-04-11T09:30:00+00:00" in text
    assert "project 101 (after 30 days" in text and "total: deleted" in text
    run = RetentionRun.objects.latest("id")
    assert f"{run.counts['emails']} emails" in text and f"{run.counts['tickets']} tickets" in text


def test_the_command_dry_run_prints_what_would_go_and_deletes_nothing(mailbag):
    count = Email.objects.count()
    out = io.StringIO()
    call_command("retention", "run", "--now", "2026-04-11T09:30", "--dry-run", stdout=out)
    assert "dry run" in out.getvalue() and "would delete" in out.getvalue()
    assert Email.objects.count() == count


def test_the_command_runs_for_the_projects_named(mailbag, other_project):
    out = io.StringIO()
    call_command(
        "retention", "run", "--now", "2026-04-11T09:30Z", "--project", "101", "--batch-size", "3", stdout=out
    )
    assert "project 101" in out.getvalue() and RetentionRun.objects.latest("id").counts["emails"] > 0
    with pytest.raises(CommandError, match="no such project: 999"):
        call_command("retention", "run", "--project", "999")


def test_the_command_refuses_a_moment_it_cannot_read():
    with pytest.raises(CommandError, match="--now"):
        call_command("retention", "run", "--now", "next tuesday")


def test_the_command_without_projects_with_the_setting_says_so(project):
    out = io.StringIO()
    call_command("retention", "run", stdout=out)
    assert "no project has automatic deletion on" in out.getvalue()


def test_the_daily_job_runs_at_a_quarter_past_three(project):
    import datetime as dt

    from postdesk.retention import tasks

    task = tasks.daily_retention.s()
    assert task.validate_datetime(dt.datetime(2026, 5, 1, 3, 15))
    assert not task.validate_datetime(dt.datetime(2026, 5, 1, 4, 15))


def test_the_job_deletes_as_of_now(forwarding, retention_days):
    from postdesk.core import clock
    from postdesk.retention import tasks

    email = receive_at(forwarding, T0)
    with clock.frozen(day(31)):
        counts = tasks.daily_retention.call_local()
    assert counts["emails"] == 1 and not Email.objects.filter(pk=email.pk).exists()


def test_a_worker_restart_finishes_a_run_that_was_killed(forwarding, retention_days, monkeypatch):
    from postdesk.core import clock
    from postdesk.retention import tasks

    receive_at(forwarding, T0)
    RetentionRun.objects.create(as_of=day(31), started_at=day(31))
    with clock.frozen(day(31.5)):
        tasks.recover()
    assert not Email.objects.exists()
    assert RetentionRun.objects.latest("id").finished_at is not None
