"""Real-time monitoring: each user's state with Email status, the number of users in Email status, today's emails sent
and time in Email status (intervals cut at midnight, open ones counted to now); the live partial, the API, and the
agent's own state switch."""

import datetime as dt
import re

import pytest

from postdesk.accounts.models import AgentState, AgentStateChange
from postdesk.accounts.services import set_state
from postdesk.core import clock
from postdesk.reports.counters import bump_bulk
from postdesk.reports.monitoring import email_status_seconds, snapshot

pytestmark = pytest.mark.django_db
PAGE = "/supervisor/reports/monitoring/"
LIVE = "/supervisor/reports/monitoring/live"
NOW = dt.datetime(2026, 11, 26, 9, 30, tzinfo=dt.UTC)
MIDNIGHT = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)


def interval(user, state, start, end=None):
    return AgentStateChange.objects.create(user=user, state=state, at=start, ended_at=end)


@pytest.fixture
def day(project, alice, bob, charlie, frozen_clock):
    """alice: Email status from 23:00 yesterday to 00:30, again 08:00-08:20, and since 09:00 (open);
    bob: Email status 07:00-07:10 then a break since; charlie works in another project."""
    interval(alice, "email", MIDNIGHT - dt.timedelta(hours=1), MIDNIGHT + dt.timedelta(minutes=30))
    interval(alice, "available", MIDNIGHT + dt.timedelta(minutes=30), MIDNIGHT + dt.timedelta(hours=8))
    interval(alice, "email", MIDNIGHT + dt.timedelta(hours=8), MIDNIGHT + dt.timedelta(hours=8, minutes=20))
    interval(alice, "email", MIDNIGHT + dt.timedelta(hours=9))
    interval(bob, "email", MIDNIGHT + dt.timedelta(hours=7), MIDNIGHT + dt.timedelta(hours=7, minutes=10))
    interval(bob, "break", MIDNIGHT + dt.timedelta(hours=7, minutes=10))
    interval(charlie, "email", MIDNIGHT - dt.timedelta(days=3), MIDNIGHT - dt.timedelta(days=2))
    type(alice).objects.filter(pk=alice.pk).update(
        state="email", state_since=MIDNIGHT + dt.timedelta(hours=9)
    )
    type(bob).objects.filter(pk=bob.pk).update(
        state="break", state_since=MIDNIGHT + dt.timedelta(hours=7, minutes=10)
    )
    bump_bulk(project.pk, alice.pk, NOW.date(), "agent", {"sent": 4})
    bump_bulk(project.pk, alice.pk, NOW.date(), "disposition", {"sent": 2})
    bump_bulk(project.pk, bob.pk, NOW.date(), "agent", {"sent": 1})
    bump_bulk(project.pk, bob.pk, NOW.date() - dt.timedelta(days=1), "agent", {"sent": 50})  # yesterday


def test_time_in_email_status_counts_only_today_and_open_intervals_to_now(alice, bob, charlie, day):
    seconds = email_status_seconds([alice.pk, bob.pk, charlie.pk], MIDNIGHT, NOW)
    assert seconds[alice.pk] == (30 + 20 + 30) * 60
    assert seconds[bob.pk] == 10 * 60
    assert charlie.pk not in seconds


def test_an_email_status_that_began_days_ago_and_is_still_open_counts_from_midnight(alice, frozen_clock):
    interval(alice, "email", MIDNIGHT - dt.timedelta(days=2))
    assert email_status_seconds([alice.pk], MIDNIGHT, NOW) == {alice.pk: 9.5 * 3600}


def test_the_snapshot_has_each_member_and_todays_figures(project, alice, bob, sam, day):
    data = snapshot(project)
    assert [u["username"] for u in data["users"]] == ["alice", "bob"]  # members of the project only
    alice_row, bob_row = data["users"]
    assert alice_row["state"] == "email" and alice_row["state_seconds"] == 30 * 60
    assert alice_row["emails_sent_today"] == 6 and alice_row["email_status_seconds_today"] == 80 * 60
    assert bob_row["state"] == "break" and bob_row["emails_sent_today"] == 1
    assert data["users_in_email_status"] == 1 and data["states"]["break"] == 1
    assert data["emails_sent_today"] == 7 and data["email_status_seconds_today"] == 90 * 60


def test_someone_who_sent_email_in_the_project_today_is_listed_too(project, sam, day):
    bump_bulk(project.pk, sam.pk, NOW.date(), "agent", {"sent": 3})
    data = snapshot(project)
    assert [u["username"] for u in data["users"]] == ["alice", "bob", "sam"]
    assert data["emails_sent_today"] == 10


def test_the_page_shows_states_counts_and_the_global_row(supervisor_client, day):
    text = supervisor_client.get(PAGE).content.decode()
    assert re.search(r'id="users-in-email-status">1<', text)
    assert re.search(r'id="emails-sent-today">7<', text)
    assert re.search(r'id="email-status-today">1:30:00<', text)
    row = re.search(r'<tr id="user-alice" data-user="alice" data-state="email">(.*?)</tr>', text, re.S).group(
        1
    )
    assert '<span class="badge state-email">Email</span>' in row and "0:30:00" in row and "1:20:00" in row
    row = re.search(r'<tr id="user-bob"[^>]*data-state="break">(.*?)</tr>', text, re.S).group(1)
    assert "Break" in row and "2:20:00" in row and ">1<" in row
    foot = re.search(r"<tfoot>(.*?)</tfoot>", text, re.S).group(1)
    assert "Global statistics" in foot and ">7<" in foot and "1:30:00" in foot


def test_the_live_part_polls_every_second_and_shows_a_change(supervisor_client, bob, day):
    text = supervisor_client.get(PAGE).content.decode()
    live = re.search(r'<section id="monitoring-live"[^>]*>', text).group(0)
    assert 'hx-get="/supervisor/reports/monitoring/live?project=101"' in live
    assert 'hx-trigger="every 1s"' in live and 'hx-swap="outerHTML"' in live
    set_state(bob, AgentState.EMAIL)
    clock.advance(dt.timedelta(seconds=5))
    fragment = supervisor_client.get(LIVE, {"project": "101"}).content.decode()
    assert fragment.startswith('<section id="monitoring-live"') and "<html" not in fragment
    assert re.search(r'id="users-in-email-status">2<', fragment)
    assert re.search(r'<tr id="user-bob"[^>]*data-state="email">', fragment)


def test_the_api_gives_the_same_snapshot_to_supervisors_only(api, sam, alice, day):
    response = api(sam).get("/api/v1/monitoring", project="101")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["project"] == "101" and body["users_in_email_status"] == 1
    assert body["emails_sent_today"] == 7 and body["email_status_seconds_today"] == 5400
    assert body["users"][0] == {
        "username": "alice",
        "name": "Alice",
        "state": "email",
        "state_since": "2026-11-26T09:00:00Z",
        "state_seconds": 1800,
        "emails_sent_today": 6,
        "email_status_seconds_today": 4800,
    }
    assert api(alice).get("/api/v1/monitoring", project="101").status_code == 403
    assert api(sam).get("/api/v1/monitoring", project="999").status_code == 404


def test_an_agent_switches_between_available_break_and_offline(agent_client, alice, project, frozen_clock):
    response = agent_client.post("/my/state", {"state": "break"}, HTTP_REFERER="http://testserver/inbox/")
    assert response.status_code == 302 and response.url == "http://testserver/inbox/"
    alice.refresh_from_db()
    assert alice.state == "break" and alice.state_since == NOW
    assert AgentStateChange.objects.filter(user=alice, state="break", ended_at__isnull=True).count() == 1
    response = agent_client.post("/my/state", {"state": "available"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    text = response.content.decode()
    assert '<span class="badge state-available">Available</span>' in text
    assert 'value="break"' in text and 'value="offline"' in text and 'value="available"' not in text
    alice.refresh_from_db()
    assert alice.state == "available"


def test_email_status_is_not_a_switch_and_outside_referers_are_not_followed(agent_client, alice, project):
    assert agent_client.post("/my/state", {"state": "email"}).status_code == 422
    assert agent_client.post("/my/state", {"state": "nap"}).status_code == 422
    response = agent_client.post("/my/state", {"state": "offline"}, HTTP_REFERER="https://evil.example.net/")
    assert response.status_code == 302 and response.url == "/inbox/"
    assert agent_client.get("/my/state").status_code == 200


def test_a_visitor_cannot_change_a_state(client, project):
    response = client.post("/my/state", {"state": "offline"})
    assert response.status_code == 302 and response.url.startswith("/login/")
