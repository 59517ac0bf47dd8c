"""The email log page: the API's filters and cursors, 'Also related to tickets' off by default, the tutorial's
columns, keyset pages, escaping, the project selector and the current month by default."""

import datetime as dt
import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from postdesk.core import clock
from postdesk.emails.models import Email
from postdesk.reports.tests.data import bulk_emails, index_addresses, outbound_email, ticket_with_reply
from postdesk.testing.factories import inbound_email

pytestmark = pytest.mark.django_db
URL = "/supervisor/reports/emails/"


def ids(response) -> list[int]:
    return [
        int(i) for i in re.findall(r'<tr data-href="/emails/\d+/" data-id="(\d+)"', response.content.decode())
    ]


def next_link(response) -> str | None:
    found = re.search(r'<a href="([^"]+)" rel="next">', response.content.decode())
    return html.unescape(found.group(1)) if found else None


@pytest.fixture
def mail(project, alice, frozen_clock):
    """Five emails of this month: two in English (one on a ticket), one in Magyar, one outbound by alice, one old."""
    now = clock.now()
    english = project.queues.get(name="English")
    magyar = project.queues.get(name="Magyar")
    new = inbound_email(
        project,
        subject="Kettle broken",
        sender="ada@example.com",
        queue=english,
        date=now - dt.timedelta(hours=3),
    )
    hu = inbound_email(
        project,
        subject="Számla kérdés",
        sender="anna@example.hu",
        queue=magyar,
        language="hu",
        date=now - dt.timedelta(hours=2),
    )
    ticket = ticket_with_reply(
        project,
        alice,
        subject="Refund please",
        received=now - dt.timedelta(hours=5),
        answered_after=dt.timedelta(minutes=30),
    )
    out = outbound_email(
        project,
        sent_by=alice,
        subject="Your invoice",
        to=["grace@example.com"],
        date=now - dt.timedelta(hours=1),
    )
    old = inbound_email(project, subject="Last month", date=now - dt.timedelta(days=40), queue=english)
    on_ticket = list(Email.objects.filter(ticket=ticket).order_by("date").values_list("id", flat=True))
    index_addresses(Email.objects.filter(project=project))
    return {"new": new, "hu": hu, "out": out, "old": old, "ticket": ticket, "on_ticket": on_ticket}


def test_emails_on_tickets_are_hidden_unless_also_related_to_tickets_is_ticked(supervisor_client, mail):
    response = supervisor_client.get(URL)
    assert response.status_code == 200
    assert ids(response) == [mail["out"].pk, mail["hu"].pk, mail["new"].pk]
    response = supervisor_client.get(URL, {"include_ticketed": "on"})
    assert ids(response) == [mail["out"].pk, mail["hu"].pk, mail["new"].pk, *reversed(mail["on_ticket"])]


def test_the_current_month_is_the_default_period_and_dates_are_whole_utc_days(supervisor_client, mail):
    response = supervisor_client.get(URL)
    assert mail["old"].pk not in ids(response)
    assert 'name="date_from" value="2026-11-01"' in response.content.decode()
    assert 'name="date_to" value="2026-11-26"' in response.content.decode()
    response = supervisor_client.get(URL, {"date_from": "2026-10-01", "date_to": "2026-10-31"})
    assert ids(response) == [mail["old"].pk]
    response = supervisor_client.get(URL, {"date_from": "2026-11-26", "date_to": "2026-11-26"})
    assert mail["new"].pk in ids(response)  # the last day is included
    response = supervisor_client.get(URL, {"date_from": "", "date_to": ""})
    assert mail["old"].pk in ids(response)  # cleared dates: no limit


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"direction": "out"}, ["out"]),
        ({"direction": "in"}, ["hu", "new"]),
        ({"sender": "ADA@"}, ["new"]),
        ({"recipient": "grace@"}, ["out"]),
        ({"subject": "kettle"}, ["new"]),
        ({"language": "hu"}, ["hu"]),
        ({"queue": "Magyar"}, ["hu"]),
        ({"kind": "agent_reply"}, ["out"]),
        ({"status": "new", "direction": "in"}, ["hu", "new"]),
    ],
)
def test_each_filter_narrows_the_log(supervisor_client, mail, params, expected):
    assert ids(supervisor_client.get(URL, params)) == [mail[name].pk for name in expected]


def test_a_ticket_number_shows_that_tickets_emails_even_without_the_checkbox(supervisor_client, mail):
    response = supervisor_client.get(URL, {"ticket": mail["ticket"].number})
    assert ids(response) == list(reversed(mail["on_ticket"]))


def test_the_page_and_the_api_list_the_same_emails_for_the_same_filters(supervisor_client, api, sam, mail):
    period = {"project": "101", "date_from": "2026-11-01T00:00:00Z", "date_to": "2026-11-27T00:00:00Z"}
    cases = [
        ({}, {}),
        ({"include_ticketed": "on"}, {"include_ticketed": "true"}),
        (
            {"direction": "in", "queue": "English", "include_ticketed": "on"},
            {"direction": "in", "queue": "English", "include_ticketed": "true"},
        ),
    ]
    for page_params, api_params in cases:
        listed = api(sam).get("/api/v1/emails", **period, **api_params).json()["items"]
        assert ids(supervisor_client.get(URL, page_params)) == [e["id"] for e in listed], page_params


def test_the_columns_of_the_tutorial_are_shown(supervisor_client, mail, alice, project):
    Email.objects.filter(pk=mail["new"].pk).update(
        locked_by=alice, locked_at=clock.now() - dt.timedelta(minutes=4)
    )
    response = supervisor_client.get(URL, {"include_ticketed": "on"})
    text = response.content.decode()
    headers = re.findall(r'<th scope="col">([^<]+)</th>', text)
    assert headers == ["Date", "Direction", "Kind", "From / To", "Subject", "Language", "Queue", "Locked by agent",
                       "Locked at", "Ticket number", "Sent by", "Status"]  # fmt: skip

    def cells(email_id) -> list[str]:
        row = re.search(rf'data-id="{email_id}">(.*?)</tr>', text, re.S).group(1)
        found = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        return [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", c)).split()) for c in found]

    assert cells(mail["new"].pk) == [
        "2026-11-26 06:30:00", "In Inbound", "Inbound", "ada@example.com → support@acme.test", "Kettle broken",
        "English", "English", "Alice", "26 Nov 09:26", "–", "–", "New",
    ]  # fmt: skip
    assert cells(mail["out"].pk) == [
        "2026-11-26 08:30:00", "Out Outbound", "Agent email", "support@acme.test → grace@example.com",
        "Your invoice", "–", "–", "–", "–", "–", "Alice", "Sent",
    ]  # fmt: skip
    number = mail["ticket"].number
    assert cells(mail["on_ticket"][0])[9] == number
    assert f'<a href="/tickets/{number}/">{number}</a>' in text


def test_rows_open_the_email(supervisor_client, mail):
    text = supervisor_client.get(URL).content.decode()
    assert f'<tr data-href="/emails/{mail["new"].pk}/"' in text


def test_next_page_links_walk_the_whole_log_once_newest_first(supervisor_client, project, frozen_clock):
    bulk_emails(project, 130, start=clock.now(), same_moment_every=3)  # ties on the date: the id decides
    seen, url, pages = [], URL + "?date_from=2026-11-01", 0
    while url:
        response = supervisor_client.get(url)
        assert response.status_code == 200
        seen += ids(response)
        url, pages = next_link(response), pages + 1
        if url:
            assert parse_qs(urlsplit(url).query)["date_from"] == ["2026-11-01"]  # the filters go along
    assert pages == 3 and len(seen) == 130 == len(set(seen))
    expected = list(
        Email.objects.filter(project=project).order_by("-date", "-id").values_list("id", flat=True)
    )
    assert seen == expected


def test_a_cursor_that_was_not_made_here_is_an_error_on_the_page(supervisor_client, mail):
    response = supervisor_client.get(URL, {"cursor": "not-a-cursor"})
    assert response.status_code == 422
    assert "not a cursor returned by this API" in response.content.decode()


def test_invalid_dates_are_shown_on_their_field(supervisor_client, mail):
    response = supervisor_client.get(URL, {"date_from": "2026-11-20", "date_to": "2026-11-01"})
    assert response.status_code == 422
    assert "The start date is after the end date." in response.content.decode()
    assert ids(response) == []


def test_subjects_and_names_with_html_are_shown_as_text(supervisor_client, project, frozen_clock):
    from postdesk.testing.screens import HOSTILE_NAME, HOSTILE_SUBJECT

    email = inbound_email(project, subject=HOSTILE_SUBJECT, sender="mallory@example.com")
    Email.objects.filter(pk=email.pk).update(from_name=HOSTILE_NAME, to=['"<b>x</b>" <x@example.com>'])
    text = supervisor_client.get(URL).content.decode()
    assert "<script>alert" not in text and "<img src=x" not in text and "<b>x</b>" not in text
    assert html.escape(HOSTILE_SUBJECT) in text
    assert "&lt;img src=x onerror=alert(&quot;name&quot;)&gt;" in text


def test_the_project_selector_shows_one_project_the_first_by_default(supervisor_client, mail, other_project):
    other = inbound_email(other_project, subject="Beta question")
    assert other.pk not in ids(supervisor_client.get(URL))
    response = supervisor_client.get(URL, {"project": "202"})
    assert ids(response) == [other.pk]
    assert '<option value="202" selected>' in response.content.decode()
    assert supervisor_client.get(URL, {"project": "999"}).status_code == 422


def test_the_export_link_carries_the_filters(supervisor_client, mail):
    text = supervisor_client.get(URL, {"subject": "kettle", "include_ticketed": "on"}).content.decode()
    link = html.unescape(
        re.search(r'<a class="button" href="([^"]+)" download>Export CSV</a>', text).group(1)
    )
    query = parse_qs(urlsplit(link).query)
    assert urlsplit(link).path == "/supervisor/reports/emails.csv"
    assert (
        query["subject"] == ["kettle"] and query["include_ticketed"] == ["on"] and query["project"] == ["101"]
    )
