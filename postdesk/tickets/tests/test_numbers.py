"""Ticket numbers xxx-YYYYMMDD-zzzzzz, unique under concurrency from several processes, on SQLite and PostgreSQL."""

import datetime as dt
import os
import subprocess
import sys
import textwrap

import pytest
from django.db import connection

from postdesk.core import clock
from postdesk.tickets import numbers
from postdesk.tickets.models import Ticket
from postdesk.tickets.services import create_ticket


@pytest.mark.django_db
def test_numbers_carry_the_project_key_the_utc_day_and_a_six_digit_sequence(project):
    with clock.frozen(dt.datetime(2026, 11, 26, 23, 59, tzinfo=dt.UTC)):
        first = create_ticket(project, title="Refund")
        second = create_ticket(project, title="Invoice")
    with clock.frozen(dt.datetime(2026, 11, 27, 0, 0, tzinfo=dt.UTC)):
        next_day = create_ticket(project, title="Delivery")
    assert (first.number, second.number, next_day.number) == (
        "101-20261126-000001",
        "101-20261126-000002",
        "101-20261127-000001",
    )
    assert all(numbers.is_well_formed(t.number) for t in (first, second, next_day))


def test_malformed_numbers_are_recognised():
    assert not numbers.is_well_formed("101-20261332-000001")
    assert not numbers.is_well_formed("101-2026112-000001")
    assert not numbers.is_well_formed("1 01-20261126-000001")


def database_url() -> str:
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    return f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


WORKER = textwrap.dedent(
    """
    import os, sys
    os.environ["DJANGO_SETTINGS_MODULE"] = "postdesk.testing.settings"
    import django
    django.setup()
    from postdesk.projects.models import Project
    from postdesk.tickets.services import create_ticket
    project = Project.objects.get(key="101")
    for i in range(int(sys.argv[1])):
        create_ticket(project, title=f"concurrent {i}")
    """
)


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_a_thousand_tickets_created_from_two_processes_at_once_get_unique_numbers(project, tmp_path):
    env = {**os.environ, "DATABASE_URL": database_url(), "POSTDESK_DATA_DIR": str(tmp_path)}
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, "500"], env=env, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-2000:]
    all_numbers = list(Ticket.objects.values_list("number", flat=True))
    assert len(all_numbers) == 1000
    assert len(set(all_numbers)) == 1000
    assert all(numbers.is_well_formed(n) for n in all_numbers)
    sequences = sorted(int(n.rsplit("-", 1)[1]) for n in all_numbers)
    days = {n.split("-")[1] for n in all_numbers}
    if len(days) == 1:  # (unless the test ran across midnight UTC)
        assert sequences == list(range(1, 1001))
