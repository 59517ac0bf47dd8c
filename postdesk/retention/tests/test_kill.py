"""`postdesk retention run` killed with SIGKILL in the middle of its work, then run again: exactly the due mail is
gone, nothing else, and every reference still holds."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from postdesk.emails.models import Email, RawMessage
from postdesk.retention import services
from postdesk.retention.models import RetentionRun
from postdesk.retention.tests.conftest import T0, at, day, found, receive_at, run_retention
from postdesk.retention.tests.test_concurrency import assert_consistent
from postdesk.testing.factories import inbound_email
from postdesk.tickets import services as tickets
from postdesk.tickets.models import Ticket

pytestmark = pytest.mark.django_db(transaction=True)


def database_url() -> str:
    """The test database, for another process."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    password = f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else ""
    return f"postgres://{quote(db['USER'])}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def test_a_run_killed_with_sigkill_then_run_again_deletes_exactly_the_due_mail(
    forwarding, alice, retention_days
):
    project = forwarding.project
    loose = [at(T0, inbound_email, project, subject=f"Loose {i}", text=f"okapi{i} words") for i in range(60)]
    recent = [
        at(day(20), inbound_email, project, subject=f"Recent {i}", text="recent words") for i in range(5)
    ]
    first = receive_at(forwarding, T0, subject="Closed case", sender="carla@example.com")
    closed = at(T0, tickets.assign_email, first, title="Closed case", by=alice)
    at(day(1), tickets.close_ticket, closed, by=alice)
    old = receive_at(forwarding, T0, subject="Open case", sender="olga@example.com")
    open_ticket = at(T0, tickets.assign_email, old, title="Open case", by=alice)
    as_of = day(31)
    cutoff = services.cutoff_for(project, as_of)
    due = set(services.due_emails(project, cutoff).values_list("id", flat=True))
    assert due == {e.pk for e in loose} | {first.pk}
    keep = set(Email.objects.values_list("id", flat=True)) - due

    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "POSTDESK_DATA_DIR": str(settings.CONFIG.data_dir),
        "POSTDESK_BROKER_URL": "memory://",
        "DJANGO_SETTINGS_MODULE": "postdesk.settings",
    }
    command = [
        sys.executable,
        "-m",
        "postdesk",
        "retention",
        "run",
        "--now",
        as_of.isoformat(),
        "--batch-size",
        "1",
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    killed_after = 0
    while time.monotonic() < deadline and process.poll() is None:
        row = RetentionRun.objects.filter(dry_run=False).order_by("-id").first()
        killed_after = (row.counts or {}).get("emails", 0) if row is not None else 0
        if killed_after >= 5:
            process.kill()
            break
        time.sleep(0.01)
    process.wait(30)
    assert process.returncode == -9, process.stderr.read().decode()[-2000:]
    killed = RetentionRun.objects.get(dry_run=False)
    assert killed.finished_at is None and 5 <= killed.counts["emails"] < len(due)
    assert 0 < len(due & set(Email.objects.values_list("id", flat=True))) < len(due)  # really midway
    assert_consistent()

    result = run_retention(as_of)

    assert set(Email.objects.values_list("id", flat=True)) == keep
    assert killed.counts["emails"] + result.totals()["emails"] >= len(
        due
    )  # the killed batch, if any, was redone
    assert (
        not Ticket.objects.filter(pk=closed.pk).exists() and Ticket.objects.filter(pk=open_ticket.pk).exists()
    )
    assert all(not found(f"okapi{i}") for i in range(60)) and found("recent") == {e.pk for e in recent}
    assert not RawMessage.objects.filter(pk=first.raw_id).exists()
    assert_consistent()
    assert not any(run_retention(as_of).totals().values())
