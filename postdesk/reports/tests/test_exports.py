"""CSV exports: streamed, UTF-8 with a BOM, every row once across keyset pages (no OFFSET), safe from formula
injection, the ticket list by labels with label and export value; and acceptance 4: 100,000 rows in constant memory."""

import csv
import datetime as dt
import io
import tracemalloc

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext

from postdesk.core import clock
from postdesk.emails.models import Email
from postdesk.projects import services as project_services
from postdesk.reports import exports
from postdesk.reports.tests.data import bulk_emails, index_addresses, outbound_email, ticket_with_reply
from postdesk.testing.factories import inbound_email

pytestmark = pytest.mark.django_db
EMAILS = "/supervisor/reports/emails.csv"
TICKETS = "/supervisor/reports/tickets.csv"


def read(response) -> tuple[str, list[list[str]]]:
    assert isinstance(response, StreamingHttpResponse)
    data = b"".join(response.streaming_content)
    text = data.decode("utf-8")
    assert text.startswith("\ufeff")
    return text, list(csv.reader(io.StringIO(text[1:])))


@pytest.mark.parametrize(
    "value, expected",
    [
        ('=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")'),
        ("+31 20 123", "'+31 20 123"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("Re: =not a formula", "Re: =not a formula"),
        (["=a@example.com", "b@example.com"], "'=a@example.com, b@example.com"),
        (None, ""),
        (42, 42),
        (dt.datetime(2026, 11, 26, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))), "2026-11-26 08:00:00"),
    ],
)
def test_cells_a_spreadsheet_would_run_as_formulas_get_an_apostrophe(value, expected):
    assert exports.cell(value) == expected


def test_the_email_export_is_an_attachment_in_utf8_with_a_bom(supervisor_client, project, frozen_clock):
    inbound_email(project, subject="Számla – kérdés")
    response = supervisor_client.get(EMAILS)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="emails-101-2026-11-01-2026-11-26.csv"'
    assert response["Cache-Control"] == "private, no-store"
    _, rows = read(response)
    assert rows[0] == [
        "Date", "Direction", "Kind", "Status", "From name", "From", "To", "Cc", "Subject", "Language", "Queue",
        "Locked by agent", "Locked at", "Ticket number", "Sent by", "Project", "Email ID",
    ]  # fmt: skip
    assert rows[1][:4] == ["2026-11-26 09:30:00", "Inbound", "Inbound", "New"]
    assert rows[1][8] == "Számla – kérdés" and rows[1][15] == "101"


def test_every_row_is_written_once_across_pages_newest_first_without_offset(
    supervisor_client, project, frozen_clock, monkeypatch
):
    monkeypatch.setattr(exports, "PAGE_SIZE", 7)
    bulk_emails(project, 50, start=clock.now(), same_moment_every=4)  # pages end inside groups of equal dates
    with CaptureQueriesContext(connection) as queries:
        _, rows = read(supervisor_client.get(EMAILS))
    expected = list(Email.objects.order_by("-date", "-id").values_list("id", flat=True))
    assert [int(r[16]) for r in rows[1:]] == expected
    selects = [
        q["sql"] for q in queries.captured_queries if "emails_email" in q["sql"] and "LIMIT" in q["sql"]
    ]
    assert len(selects) == 8  # 50 rows, 7 a page: 7 full pages and a last short one
    assert not any("OFFSET" in sql for sql in selects)


def test_the_email_export_applies_the_logs_filters(supervisor_client, project, alice, frozen_clock):
    now = clock.now()
    kept = inbound_email(project, subject="Kettle broken", sender="ada@example.com")
    inbound_email(project, subject="Kettle again", sender="bob@example.com")
    inbound_email(project, subject="Kettle old", sender="ada@example.com", date=now - dt.timedelta(days=60))
    ticket = ticket_with_reply(project, alice, subject="Kettle ticket", received=now - dt.timedelta(hours=1))
    index_addresses(Email.objects.all())
    _, rows = read(supervisor_client.get(EMAILS, {"sender": "ada@", "subject": "kettle"}))
    assert [int(r[16]) for r in rows[1:]] == [kept.pk]
    _, rows = read(supervisor_client.get(EMAILS, {"include_ticketed": "on", "subject": "ticket"}))
    assert [r[13] for r in rows[1:]] == [ticket.number]


def test_html_quotes_commas_and_newlines_survive_the_round_trip(
    supervisor_client, project, alice, frozen_clock
):
    subject = '<script>alert("x")</script>, "quoted"; new\nline'
    email = outbound_email(project, sent_by=alice, subject=subject, to=["a@example.com", "=b@example.com"])
    Email.objects.filter(pk=email.pk).update(from_name='=cmd|" /C calc"!A0')
    _, rows = read(supervisor_client.get(EMAILS))
    row = rows[1]
    assert row[8] == subject  # text, not HTML: a CSV file is not a page
    assert row[4] == '\'=cmd|" /C calc"!A0'
    assert row[6] == "a@example.com, =b@example.com"  # the cell starts with "a": nothing to neutralise
    assert row[14] == "alice"


def test_invalid_filters_give_422_and_no_file(supervisor_client, project):
    response = supervisor_client.get(EMAILS, {"date_from": "2026-11-20", "date_to": "2026-11-01"})
    assert response.status_code == 422 and "start date is after the end date" in response.content.decode()
    response = supervisor_client.get(TICKETS, {"date_from": "nonsense"})
    assert response.status_code == 422


def test_the_ticket_export_by_labels_has_each_types_label_and_export_value(
    supervisor_client, project, alice, bob, frozen_clock
):
    for label, value in (
        ("Complaint", "COMPLAINT"),
        ("Financial question", "FINANCE"),
        ("Technical", "TECH"),
    ):
        project_services.upsert_ticket_type(project, label, value)
    complaint, finance = (
        project.ticket_types.get(label="Complaint"),
        project.ticket_types.get(label="Financial question"),
    )
    now = clock.now()
    a = ticket_with_reply(
        project,
        alice,
        subject="Broken",
        received=now - dt.timedelta(hours=5),
        answered_after=dt.timedelta(hours=1, minutes=2, seconds=3),
        ticket_type=complaint,
    )
    b = ticket_with_reply(
        project, bob, subject="=Invoice", received=now - dt.timedelta(hours=4), ticket_type=finance
    )
    ticket_with_reply(project, alice, subject="No type", received=now - dt.timedelta(hours=3))
    response = supervisor_client.get(TICKETS, {"types": ["Complaint", "Financial question"]})
    assert response["Content-Disposition"] == 'attachment; filename="tickets-101-2026-11-01-2026-11-26.csv"'
    _, rows = read(response)
    assert rows[0] == [
        "Ticket number", "Ticket ID", "Ticket type", "Export value", "Title", "Agent", "Status", "Substatus",
        "First open time", "First sent time", "Last sent time", "First received time", "Last received time",
        "Sent emails", "Received emails", "SLA (seconds)", "SLA", "Project",
    ]  # fmt: skip
    assert [r[0] for r in rows[1:]] == [b.number, a.number]
    by_number = {r[0]: r for r in rows[1:]}
    row = by_number[a.number]
    assert row[1] == str(a.pk) and row[2:6] == ["Complaint", "COMPLAINT", "Broken", "alice"]
    assert (
        row[8] == "2026-11-26 04:30:00"
        and row[9] == "2026-11-26 05:32:03"
        and row[11] == "2026-11-26 04:30:00"
    )
    assert row[13:18] == ["1", "1", "3723", "1:02:03", "101"]
    row = by_number[b.number]
    assert row[2:6] == ["Financial question", "FINANCE", "'=Invoice", "bob"] and row[15:17] == ["", ""]


@pytest.mark.slow
def test_an_export_of_100000_rows_runs_in_constant_memory(supervisor_client, project, frozen_clock):
    """Acceptance 4: the peak of Python memory while the response is consumed stays small, and does not grow with the
    number of rows (20,000 rows, then 100,000)."""

    def export_peak() -> tuple[int, int, int]:
        response = supervisor_client.get(EMAILS, {"date_from": "2026-01-01"})
        lines, size = 0, 0
        tracemalloc.start()
        try:
            for chunk in response.streaming_content:
                lines += chunk.count(b"\n")
                size += len(chunk)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        return peak, lines, size

    bulk_emails(project, 20_000, start=clock.now())
    small_peak, lines, _ = export_peak()
    assert lines == 20_001
    bulk_emails(project, 80_000, start=clock.now() - dt.timedelta(days=1))
    peak, lines, size = export_peak()
    assert lines == 100_001 and size > 8_000_000
    print(
        f"tracemalloc peak: {small_peak / 1e6:.1f} MB for 20,000 rows, {peak / 1e6:.1f} MB for 100,000 rows"
    )
    assert peak < 30 * 1024 * 1024, peak
    assert peak < small_peak * 1.5 + 2 * 1024 * 1024, (small_peak, peak)  # constant, not proportional
