"""User-based statistics: the tutorial's counters per agent and period (agent, disposition and mass email) as a table
with totals and as server-drawn SVG charts; the per-day series in the API."""

import datetime as dt
import html
import re

import pytest

from postdesk.emails.models import EventKind, Kind
from postdesk.reports import stats
from postdesk.reports.counters import bump_bulk, count_event, count_sent
from postdesk.reports.tests.data import outbound_email

pytestmark = pytest.mark.django_db
URL = "/supervisor/reports/statistics/"
NOV = dt.date(2026, 11, 1)


@pytest.fixture
def counters(project, alice, bob, frozen_clock):
    bump_bulk(project.pk, alice.pk, NOV, "agent", {"sent": 10, "response": 7, "delivered": 9, "opened": 4})
    bump_bulk(project.pk, alice.pk, dt.date(2026, 11, 20), "agent", {"sent": 2, "bounced": 1, "dropped": 1})
    bump_bulk(
        project.pk,
        alice.pk,
        dt.date(2026, 11, 20),
        "mass",
        {"sent": 500, "unsubscribed": 3, "link_clicks": 40},
    )
    bump_bulk(project.pk, bob.pk, dt.date(2026, 11, 25), "disposition", {"sent": 5, "marked_as_spam": 1})
    bump_bulk(project.pk, bob.pk, dt.date(2026, 10, 31), "agent", {"sent": 99})  # before the period


def table_rows(text: str) -> dict[str, list[int]]:
    body = re.search(r"<tbody>(.*?)</tbody>", text, re.S).group(1)
    out = {}
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        name = re.search(r'<th scope="row"[^>]*>(.*?)</th>', row).group(1)
        out[name] = [int(v) for v in re.findall(r"<td[^>]*>(\d+)</td>", row)]
    foot = re.search(r"<tfoot>(.*?)</tfoot>", text, re.S)
    if foot:
        out["Total"] = [int(v) for v in re.findall(r"<td[^>]*>(\d+)</td>", foot.group(1))]
    return out


def test_the_table_has_the_tutorials_counters_grouped_by_kind(supervisor_client, counters):
    text = supervisor_client.get(URL).content.decode()
    groups = re.findall(r'<th scope="colgroup" colspan="(\d+)"[^>]*>([^<]+)</th>', text)
    assert groups == [("9", "Agent email"), ("8", "Disposition email"), ("8", "Mass email")]
    titles = re.findall(r'<th scope="col" class="num[^"]*"><(?:abbr|span) title="([^"]+)">', text)
    every = [
        "Sent",
        "Bounced",
        "Link clicks",
        "Marked as spam",
        "Delivered",
        "Dropped",
        "Opened",
        "Unsubscribed",
    ]
    assert [html.unescape(t) for t in titles] == [
        *(f"Agent email ({c})" for c in ["Sent", "Response", *every[1:]]),
        *(f"Disposition email ({c})" for c in every),
        *(f"Mass email ({c})" for c in every),
    ]
    assert '<abbr title="Mass email (Unsubscribed)">Unsub.</abbr>' in text


def test_agents_are_rows_with_the_counters_of_the_period_and_a_total(supervisor_client, counters):
    rows = table_rows(supervisor_client.get(URL).content.decode())
    # agent: sent response bounced clicks spam delivered dropped opened unsub | disposition (8) | mass (8)
    assert rows["Alice"] == [12, 7, 1, 0, 0, 9, 1, 4, 0] + [0] * 8 + [500, 0, 40, 0, 0, 0, 0, 3]
    assert rows["Bob"] == [0] * 9 + [5, 0, 0, 1, 0, 0, 0, 0] + [0] * 8  # October's 99 are outside the period
    assert rows["Total"] == [a + b for a, b in zip(rows["Alice"], rows["Bob"], strict=True)]
    rows = table_rows(
        supervisor_client.get(URL, {"date_from": "2026-10-01", "date_to": "2026-10-31"}).content.decode()
    )
    assert rows["Bob"][0] == 99 and "Alice" not in rows


def test_sending_and_delivery_events_reach_the_table_each_event_once(
    supervisor_client, project, alice, frozen_clock
):
    email = outbound_email(project, sent_by=alice)
    count_sent(email)
    for kind in (EventKind.DELIVERED, EventKind.OPENED, EventKind.OPENED, EventKind.CLICKED):
        count_event(email, kind)
    mass = outbound_email(project, sent_by=alice, kind=Kind.MASS)
    count_sent(mass)
    count_event(mass, EventKind.BOUNCED)
    rows = table_rows(supervisor_client.get(URL).content.decode())
    assert rows["Alice"] == [1, 0, 0, 1, 0, 1, 0, 1, 0] + [0] * 8 + [1, 1, 0, 0, 0, 0, 0, 0]


def test_the_charts_are_inline_svg_drawn_on_the_server(supervisor_client, counters):
    text = supervisor_client.get(URL).content.decode()
    svgs = re.findall(r"<svg .*?</svg>", text, re.S)
    assert len(svgs) == 4
    assert all('role="img"' in s and "<script" not in s and "style=" not in s for s in svgs)
    bars = re.findall(r"<title>Alice · Sent: ([\d,]+)</title>", svgs[0])
    assert bars == ["512"]  # sent of every kind together
    assert re.findall(r"<title>Bob · Disposition email: (\d+)</title>", svgs[1]) == ["5"]
    assert "<title>20 Nov · Mass email: 500</title>" in svgs[2]
    assert svgs[2].count("<polyline") == 3 and svgs[2].count("<circle") == 3 * 26  # three kinds, 26 days


def test_names_in_charts_and_table_are_escaped(supervisor_client, project, alice, frozen_clock):
    alice.first_name = '<script>alert("x")</script>'
    alice.save()
    bump_bulk(project.pk, alice.pk, NOV, "agent", {"sent": 1})
    text = supervisor_client.get(URL).content.decode()
    assert "<script>alert" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text


def test_a_period_without_email_has_an_empty_table_and_no_charts(supervisor_client, project, frozen_clock):
    text = supervisor_client.get(URL).content.decode()
    assert "No email sent in this period." in text and "<svg" not in text


def test_a_period_that_ends_before_it_starts_is_refused(supervisor_client, project):
    response = supervisor_client.get(URL, {"date_from": "2026-11-20", "date_to": "2026-11-01"})
    assert (
        response.status_code == 422 and "The start date is after the end date." in response.content.decode()
    )
    response = supervisor_client.get(URL, {"date_from": "2000-01-01", "date_to": "2026-11-01"})
    assert response.status_code == 422 and "At most ten years at once." in response.content.decode()


def test_the_daily_series_has_every_day_of_the_period(project, counters):
    days = stats.daily(project, dt.date(2026, 11, 19), dt.date(2026, 11, 21))
    assert [d["day"] for d in days] == [dt.date(2026, 11, 19), dt.date(2026, 11, 20), dt.date(2026, 11, 21)]
    assert days[1]["agent_email"]["sent"] == 2 and days[1]["mass"]["sent"] == 500
    assert (
        days[0]["agent_email"] == {c: 0 for c in days[0]["agent_email"]}
        and "response" in days[0]["agent_email"]
    )
    assert "response" not in days[0]["mass"]


def test_the_api_gives_the_daily_series_to_supervisors(api, sam, alice, counters):
    response = api(sam).get(
        "/api/v1/stats/daily", project="101", date_from="2026-11-19", date_to="2026-11-20"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert [d["day"] for d in body["days"]] == ["2026-11-19", "2026-11-20"]
    assert body["days"][1]["mass"]["link_clicks"] == 40 and body["days"][1]["agent_email"]["dropped"] == 1
    assert api(alice).get("/api/v1/stats/daily", project="101").status_code == 403
    response = api(sam).get(
        "/api/v1/stats/daily", project="101", date_from="2026-11-20", date_to="2026-11-19"
    )
    assert response.status_code == 422
