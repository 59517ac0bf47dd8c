"""The supervisor's ticket list: the tutorial's columns (SLA from first received to first sent), filters by type
labels, agent, status and first open time, keyset pages, and the same tickets as GET /api/v1/tickets."""

import datetime as dt
import html
import re

import pytest

from postdesk.core import clock
from postdesk.projects import services as project_services
from postdesk.reports.tests.data import ticket_with_reply
from postdesk.tickets.models import Ticket
from postdesk.tickets.services import close_ticket

pytestmark = pytest.mark.django_db
URL = "/supervisor/reports/tickets/"


def numbers(response) -> list[str]:
    return re.findall(r'<tr data-href="/tickets/([^/]+)/"', response.content.decode())


@pytest.fixture
def tickets(project, alice, bob, frozen_clock):
    for label, value in (
        ("Complaint", "COMPLAINT"),
        ("Financial question", "FINANCE"),
        ("Technical", "TECH"),
    ):
        project_services.upsert_ticket_type(project, label, value)
    types = {t.export_value: t for t in project.ticket_types.all()}
    now = clock.now()
    made = {
        "complaint": ticket_with_reply(
            project, alice, subject="Broken kettle", received=now - dt.timedelta(hours=6),
            answered_after=dt.timedelta(minutes=95), ticket_type=types["COMPLAINT"],
        ),
        "finance": ticket_with_reply(
            project, bob, subject="Invoice twice", received=now - dt.timedelta(hours=5),
            ticket_type=types["FINANCE"],
        ),
        "tech": ticket_with_reply(
            project, alice, subject="Cannot log in", received=now - dt.timedelta(hours=4),
            answered_after=dt.timedelta(seconds=59), ticket_type=types["TECH"],
        ),
        "old": ticket_with_reply(
            project, bob, subject="Last month", received=now - dt.timedelta(days=35), ticket_type=types["TECH"],
        ),
    }  # fmt: skip
    close_ticket(made["tech"], by=alice)
    return made


def test_the_columns_of_the_tutorial_with_the_sla_value(supervisor_client, tickets):
    text = supervisor_client.get(URL).content.decode()
    headers = re.findall(r'<th scope="col"(?: class="num")?>([^<]+)</th>', text)
    assert headers == ["Ticket number", "ID", "Type", "Title", "Agent", "Status", "First open time", "First sent",
                       "Last sent", "First received", "Last received", "Sent", "Received", "SLA"]  # fmt: skip
    ticket = tickets["complaint"]
    row = re.search(
        rf'<tr data-href="/tickets/{ticket.number}/" data-id="{ticket.pk}">(.*?)</tr>', text, re.S
    )
    cells = [
        html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row[1])
    ]
    assert cells == [ticket.number, str(ticket.pk), "Complaint", "Broken kettle", "Alice", "Open",
                     "2026-11-26 03:30", "2026-11-26 05:05", "2026-11-26 05:05", "2026-11-26 03:30",
                     "2026-11-26 03:30", "1", "1", "1:35:00"]  # fmt: skip


def test_by_default_every_ticket_opened_this_month_newest_first(supervisor_client, tickets):
    assert numbers(supervisor_client.get(URL)) == [
        tickets[k].number for k in ("tech", "finance", "complaint")
    ]


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"types": ["Complaint"]}, ["complaint"]),
        ({"types": ["Complaint", "Technical"]}, ["tech", "complaint"]),
        ({"agent": "bob"}, ["finance"]),
        ({"status": "closed"}, ["tech"]),
        ({"status": "park", "agent": "alice"}, ["complaint"]),
        ({"date_from": "2026-10-01", "date_to": "2026-10-31"}, ["old"]),
        ({"types": ["Technical"], "date_from": ""}, ["tech", "old"]),
        ({"types": ["Not a label here"]}, ["tech", "finance", "complaint"]),
    ],
)
def test_filters_by_labels_agent_status_and_first_open_time(supervisor_client, tickets, params, expected):
    assert numbers(supervisor_client.get(URL, params)) == [tickets[k].number for k in expected]


def test_the_page_and_the_api_agree(supervisor_client, api, sam, tickets):
    listed = api(sam).get(
        "/api/v1/tickets", project="101", agent="alice", date_from="2026-11-01T00:00:00Z",
        date_to="2026-11-27T00:00:00Z",
    ).json()["items"]  # fmt: skip
    assert numbers(supervisor_client.get(URL, {"agent": "alice"})) == [t["number"] for t in listed]
    assert {t["number"]: t["sla_seconds"] for t in listed}[tickets["complaint"].number] == 95 * 60


def test_next_page_links_walk_every_ticket_once(supervisor_client, project, alice, frozen_clock):
    from postdesk.tickets.services import create_ticket

    start = clock.now()
    for i in range(57):
        with clock.frozen(start - dt.timedelta(minutes=i // 2)):  # two tickets a minute: ties on the moment
            create_ticket(project, title=f"Ticket {i}", owner=alice, by=alice)
    seen, url = [], URL
    while url:
        response = supervisor_client.get(url)
        seen += numbers(response)
        found = re.search(r'<a href="([^"]+)" rel="next">', response.content.decode())
        url = html.unescape(found.group(1)) if found else None
    expected = list(Ticket.objects.order_by("-created_at", "-id").values_list("number", flat=True))
    assert seen == expected and len(seen) == 57


def test_titles_with_html_are_text(supervisor_client, project, alice, frozen_clock):
    ticket_with_reply(project, alice, subject="<img src=x onerror=alert(1)>", received=clock.now())
    text = supervisor_client.get(URL).content.decode()
    assert "<img src=x" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text


def test_the_labels_offered_are_the_selected_projects(supervisor_client, tickets, other_project):
    project_services.upsert_ticket_type(other_project, "Sales lead", "LEAD")
    text = supervisor_client.get(URL).content.decode()
    assert 'value="Complaint"' in text and "Sales lead" not in text
    text = supervisor_client.get(URL, {"project": "202"}).content.decode()
    assert 'value="Sales lead"' in text and 'value="Complaint"' not in text
