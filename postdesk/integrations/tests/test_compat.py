"""Contract tests of the vendor-compatible API (/v2): exactly the documented fields with their types, pagination with
start/num (limit), the date filters and dateField, the sort direction, errors, and the same access rules as /api/v1."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from postdesk.core import clock
from postdesk.emails.models import Email, Kind, Status
from postdesk.integrations import payloads
from postdesk.integrations.compat import DATE_FIELDS
from postdesk.testing.factories import inbound_email
from postdesk.tickets import services as ticket_services
from postdesk.tickets.models import Ticket

pytestmark = pytest.mark.django_db

UTC = dt.UTC
TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
INT, STR, BOOL, TIME_T = "int", "str", "bool", "time"
NULL = "null"


def at(day: int, hour: int = 12, month: int = 11, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


# field -> the types it may have (documented in docs/integrations.md)
EMAIL_LOG_TYPES = {
    "emailId": {INT},
    "queueId": {INT, NULL},
    "subject": {STR},
    "to": {STR},
    "firstLine": {STR},
    "from": {STR},
    "receivedTime": {TIME_T},
    "receivedTime_utc": {TIME_T},
    "lockTime": {TIME_T, NULL},
    "lockTime_utc": {TIME_T, NULL},
    "emailSize": {INT},
    "isSpam": {BOOL},
    "isVirus": {BOOL},
    "direction": {STR},
    "dispositionId": {INT, NULL},
    "templateId": {INT, NULL},
    "diagnosticCode": {STR},
    "lockUser": {INT, NULL},
    "title": {STR, NULL},
    "ticketNo": {STR, NULL},
    "ticketId": {INT, NULL},
    "entityId": {INT, NULL},
    "contactId": {INT, NULL},
    "name": {STR},
    "templateName": {STR, NULL},
    "dispositionName": {STR, NULL},
    "fromAddress": {STR},
}
TICKET_TYPES = {
    "ticketId": {INT},
    "entityId": {INT, NULL},
    "contactId": {INT, NULL},
    "ticketNo": {STR},
    "title": {STR},
    "type": {STR, NULL},
    "description": {STR},
    "firstOpenTime": {TIME_T},
    "lastOpenTime": {TIME_T, NULL},
    "softDeadline": {TIME_T, NULL},
    "status": {STR},
    "substatus": {STR},
    "createdUserId": {INT, NULL},
    "createdUserName": {STR, NULL},
    "projectId": {STR},
    "projectName": {STR},
    "userId": {INT, NULL},
    "userName": {STR, NULL},
    "firstSentTime": {TIME_T, NULL},
    "lastSentTime": {TIME_T, NULL},
    "firstReceivedTime": {TIME_T, NULL},
    "lastReceivedTime": {TIME_T, NULL},
    "lastCloseTime": {TIME_T, NULL},
    "sentCount": {INT},
    "receivedCount": {INT},
}


def kind_of(value) -> str:
    if value is None:
        return NULL
    if type(value) is bool:
        return BOOL
    if type(value) is int:
        return INT
    if isinstance(value, str):
        return TIME_T if TIME.match(value) else STR
    return type(value).__name__


def assert_shape(row: dict, types: dict) -> None:
    assert list(row) == list(types)  # exactly these keys, in the documented order
    for field, allowed in types.items():
        kind = kind_of(row[field])
        if kind == TIME_T and TIME_T not in allowed and STR in allowed:
            kind = STR  # a subject that looks like a time is still a string
        assert kind in allowed, f"{field}={row[field]!r} is {kind}, documented {allowed}"


def test_the_documented_field_lists_are_the_ones_served():
    assert list(DATE_FIELDS) == [
        "firstSentTime",
        "lastSentTime",
        "firstOpenTime",
        "firstReceivedTime",
        "softDeadline",
        "lastCloseTime",
        "lastReceivedTime",
    ]
    assert tuple(EMAIL_LOG_TYPES) == payloads.EMAIL_LOG_FIELDS
    assert tuple(TICKET_TYPES) == payloads.TICKET_FIELDS


# The email log --------------------------------------------------------------------------------------------------


@pytest.fixture
def log(project, sender_account, alice, bob):
    """Emails around November 2026: inbound in several queues, one on Alice's ticket with a customer record, one
    locked by Bob, an agent's reply, a disposition email that was dropped, and the month's edges."""
    from postdesk.outbound.services import queue_email
    from postdesk.projects.models import Disposition
    from postdesk.projects.services import upsert_template
    from postdesk.records.services import create_record

    english = project.queues.get(name="English")
    magyar = project.queues.get(name="Magyar")
    emails = {
        "before": inbound_email(project, subject="October", date=at(31, 23, month=10, minute=59, second=59)),
        "first": inbound_email(project, subject="Kettle", date=at(3, 8)),
        "english": inbound_email(project, subject="English", queue=english, date=at(15, 9)),
        "magyar": inbound_email(project, subject="Magyar", queue=magyar, date=at(15, 10), language="hu"),
        "late": inbound_email(project, subject="Late", date=at(28, 23, minute=59, second=59)),
        "after": inbound_email(project, subject="December", date=dt.datetime(2026, 12, 1, tzinfo=UTC)),
    }
    record = create_record(project, name="Carla Customer", email="customer@example.com")
    ticket = ticket_services.assign_email(emails["first"], title="Kettle broken", record=record, by=alice)
    Email.objects.filter(pk=emails["magyar"].pk).update(locked_by=bob, locked_at=at(15, 11))
    upsert_template(project, "sorry", {"subject": "Sorry", "body": "We are sorry."})
    template = project.templates.get(name="sorry")
    disposition = Disposition.objects.create(project=project, name="Refund", template=template)
    with clock.frozen(at(4, 9)):
        reply = ticket_services.reply(ticket, body="A new kettle is on its way.", by=alice)
    with clock.frozen(at(5, 9)):
        dropped = queue_email(
            project=project,
            account=sender_account,
            kind=Kind.DISPOSITION,
            to=["nobody@example.com"],
            subject="Your refund",
            text="Refunded.",
            template=template,
            disposition=disposition,
            record=record,
        )
    Email.objects.filter(pk=dropped.pk).update(
        status=Status.DROPPED, smtp_response="550 5.1.1 <nobody@example.com>: Recipient address rejected"
    )
    emails.update(reply=reply, dropped=dropped)
    return {
        "emails": emails,
        "ticket": ticket,
        "record": record,
        "template": template,
        "disposition": disposition,
    }


def month(client, **params):
    return client.get("/v2/projects/101/emails/2026/11", **params)


def test_every_email_log_row_has_exactly_the_vendors_fields_and_types(api, sam, log):
    response = month(api(sam))
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"rows", "totalCount"} and body["totalCount"] == 6 == len(body["rows"])
    for row in body["rows"]:
        assert_shape(row, EMAIL_LOG_TYPES)


def test_the_email_log_maps_postdesks_fields(api, sam, log, alice, bob):
    rows = {r["emailId"]: r for r in month(api(sam)).json()["rows"]}
    e = log["emails"]
    first = rows[e["first"].pk]
    assert first["direction"] == "inbound" and first["fromAddress"] == "customer@example.com"
    assert first["from"] == "Carla Customer <customer@example.com>" and first["to"] == "support@acme.test"
    assert (first["ticketNo"], first["title"], first["ticketId"]) == (
        log["ticket"].number,
        "Kettle broken",
        log["ticket"].pk,
    )
    assert first["entityId"] == first["contactId"] == log["record"].pk and first["name"] == "Carla Customer"
    assert first["receivedTime"] == first["receivedTime_utc"] == "2026-11-03 08:00:00"
    assert first["isVirus"] is False and first["isSpam"] is False and first["diagnosticCode"] == ""
    assert first["queueId"] == log["ticket"].project.default_queue.pk
    magyar = rows[e["magyar"].pk]
    assert magyar["lockUser"] == bob.pk and magyar["lockTime"] == "2026-11-15 11:00:00"
    assert magyar["ticketNo"] is None and magyar["entityId"] is None
    reply = rows[e["reply"].pk]
    assert (
        reply["direction"] == "outbound"
        and reply["ticketId"] == log["ticket"].pk
        and reply["lockUser"] is None
    )
    dropped = rows[e["dropped"].pk]
    assert dropped["diagnosticCode"] == "5.1.1"
    assert (dropped["templateId"], dropped["templateName"]) == (log["template"].pk, "sorry")
    assert (dropped["dispositionId"], dropped["dispositionName"]) == (log["disposition"].pk, "Refund")
    assert dropped["name"] == "Carla Customer"  # the record it was sent to


def test_the_email_log_of_a_month_stops_at_its_edges_and_a_day_is_one_day(api, sam, log):
    client = api(sam)
    subjects = [r["subject"] for r in month(client).json()["rows"]]
    assert "October" not in subjects and "December" not in subjects and "Late" in subjects
    day = client.get("/v2/projects/101/emails/2026/11/15").json()
    assert [r["subject"] for r in day["rows"]] == ["English", "Magyar"] and day["totalCount"] == 2
    assert client.get("/v2/projects/101/emails/2026/10/31").json()["totalCount"] == 1
    assert client.get("/v2/projects/101/emails/2026/12").json()["totalCount"] == 1


def test_the_email_log_pages_with_start_and_num_in_either_direction(api, sam, log):
    client = api(sam)
    everything = [r["emailId"] for r in month(client).json()["rows"]]
    dates = [r["receivedTime"] for r in month(client).json()["rows"]]
    assert dates == sorted(dates)  # ASC by default
    pages = []
    for start in range(0, 6, 4):
        body = month(client, start=start, num=4).json()
        assert body["totalCount"] == 6
        pages += [r["emailId"] for r in body["rows"]]
    assert pages == everything
    assert [r["emailId"] for r in month(client, direction="DESC").json()["rows"]] == everything[::-1]
    assert [
        r["emailId"] for r in month(client, direction="desc", start=1, num=2).json()["rows"]
    ] == everything[-2:-4:-1]
    assert month(client, start=99).json() == {"rows": [], "totalCount": 6}


@pytest.mark.parametrize(
    "path, params, field",
    [
        ("/v2/projects/101/emails/2026/13", {}, "month"),
        ("/v2/projects/101/emails/2026/11/31", {}, "day"),
        ("/v2/projects/101/emails/twenty/11", {}, "year"),
        ("/v2/projects/101/emails/2026/11", {"num": 0}, "num"),
        ("/v2/projects/101/emails/2026/11", {"num": 1001}, "num"),
        ("/v2/projects/101/emails/2026/11", {"start": -1}, "start"),
        ("/v2/projects/101/emails/2026/11", {"start": "x"}, "start"),
        ("/v2/projects/101/emails/2026/11", {"direction": "UP"}, "direction"),
        ("/v2/projects/101/tickets", {"dateField": "closedAt", "dateFrom": "2026-11-01"}, "dateField"),
        ("/v2/projects/101/tickets", {"dateFrom": "yesterday"}, "dateFrom"),
        ("/v2/projects/101/tickets", {"dateFrom": "2026-11-20", "dateTo": "2026-11-10"}, "dateFrom"),
        ("/v2/projects/101/tickets", {"limit": 0}, "limit"),
    ],
)
def test_bad_parameters_answer_422_naming_the_field_in_the_vendors_envelope(
    api, sam, project, path, params, field
):
    response = api(sam).get(path, **params)
    assert response.status_code == 422
    body = response.json()
    assert body["field"] == field and body["errors"] == [body["detail"]] and field in body["detail"]
    assert (body["rows"], body["totalCount"], body["messages"]) == ([], 0, [])


def test_the_compatibility_api_needs_a_token_and_keeps_the_access_rules(
    api, alice, charlie, sam, log, project
):
    assert api(None).get("/v2/projects/101/emails/2026/11").status_code == 401
    assert api(None).get("/v2/projects/101/tickets").json()["errors"]
    assert api(charlie).get("/v2/projects/101/emails/2026/11").status_code == 404  # not her project
    assert api(charlie).get("/v2/projects/101/tickets").status_code == 404
    assert api(sam).get("/v2/projects/999/tickets").status_code == 404
    # Alice: emails of her queues (Default, English) and of her tickets; not Bob's Magyar queue
    subjects = {r["subject"] for r in month(api(alice)).json()["rows"]}
    assert "Magyar" not in subjects and {"English", "Kettle"} <= subjects
    assert month(api(alice)).json()["totalCount"] == len(subjects)


# The ticket list ------------------------------------------------------------------------------------------------


@pytest.fixture
def tickets(project, alice, bob, sam):
    """Three tickets: A (Alice's, made by Sam), B (Bob's), C (nobody's), with every date field of A in
    November 10 and of B in November 20 (C's are empty, its first open time in October)."""
    from postdesk.projects.services import upsert_ticket_type

    upsert_ticket_type(project, "Complaint", "COMPLAINT")
    complaint = project.ticket_types.get()
    made = {}
    for name, owner, creator, when in (
        ("A", alice, sam, at(10)),
        ("B", bob, bob, at(20)),
        ("C", None, None, at(1, month=10)),
    ):
        with clock.frozen(when):
            made[name] = ticket_services.create_ticket(
                project,
                title=f"Ticket {name}",
                owner=owner,
                creator=creator,
                ticket_type=complaint if name == "A" else None,
            )
    for name in ("A", "B"):
        when = made[name].created_at
        Ticket.objects.filter(pk=made[name].pk).update(
            first_sent_time=when,
            last_sent_time=when,
            first_received_time=when,
            last_received_time=when,
            soft_deadline=when,
            last_close_time=when,
        )
    return made


def ticket_list(client, **params):
    return client.get("/v2/projects/101/tickets", **params)


def test_every_ticket_row_has_exactly_the_vendors_fields_and_types(api, sam, tickets):
    body = ticket_list(api(sam)).json()
    assert list(body) == ["rows", "totalCount", "messages", "errors"]
    assert body["totalCount"] == 3 and body["messages"] == [] and body["errors"] == []
    for row in body["rows"]:
        assert_shape(row, TICKET_TYPES)
    a = body["rows"][1]  # oldest first: C (October), A, B
    assert a["ticketNo"] == tickets["A"].number and a["type"] == "COMPLAINT" and a["status"] == "park"
    assert (a["userId"], a["userName"], a["createdUserName"]) == (tickets["A"].owner_id, "alice", "sam")
    assert (
        a["projectId"] == "101"
        and a["projectName"] == "Acme Care"
        and a["firstOpenTime"] == "2026-11-10 12:00:00"
    )


def test_the_ticket_list_filters_by_assignee_creator_and_number(api, sam, alice, bob, tickets):
    client = api(sam)

    def numbers(**params):
        return [r["ticketNo"] for r in ticket_list(client, **params).json()["rows"]]

    assert numbers(userId=alice.pk) == numbers(userId="alice") == [tickets["A"].number]
    assert numbers(createdBy=bob.pk) == numbers(createdBy="bob") == [tickets["B"].number]
    assert numbers(ticketNo=tickets["B"].number) == [tickets["B"].number]
    assert numbers(userId="nobody") == []


@pytest.mark.parametrize("date_field", list(DATE_FIELDS))
def test_the_ticket_list_filters_by_each_date_field(api, sam, tickets, date_field):
    client = api(sam)

    def titles(**params):
        response = ticket_list(client, dateField=date_field, **params)
        assert response.status_code == 200, response.content
        return [r["title"] for r in response.json()["rows"]]

    assert titles(dateFrom="2026-11-15", dateTo="2026-11-30") == ["Ticket B"]
    assert titles(dateFrom="2026-11-01", dateTo="2026-11-10") == ["Ticket A"]  # a bare dateTo: the whole day
    assert titles(dateFrom="2026-11-10 12:00:01") == ["Ticket B"]
    assert titles(dateTo="2026-11-10 12:00:00") == (
        ["Ticket C", "Ticket A"] if date_field == "firstOpenTime" else ["Ticket A"]
    )
    assert titles(dateFrom="2026-11-20T13:00:00+02:00", dateTo="2026-11-20T12:30:00Z") == ["Ticket B"]
    assert titles(dateFrom="2026-11-20T15:00:00+02:00") == []


def test_dates_without_a_date_field_filter_on_the_first_open_time_and_say_so(api, sam, tickets):
    body = ticket_list(api(sam), dateFrom="2026-11-01").json()
    assert [r["title"] for r in body["rows"]] == ["Ticket A", "Ticket B"]
    assert body["messages"] == ["dateField not given: firstOpenTime used"]


def test_the_ticket_list_pages_with_start_and_limit(api, sam, tickets):
    client = api(sam)
    everything = [r["ticketId"] for r in ticket_list(client).json()["rows"]]
    assert everything == [tickets[n].pk for n in ("C", "A", "B")]
    assert [r["ticketId"] for r in ticket_list(client, start=1, limit=1).json()["rows"]] == everything[1:2]
    page = ticket_list(client, start=2, limit=5).json()
    assert [r["ticketId"] for r in page["rows"]] == everything[2:] and page["totalCount"] == 3
    assert ticket_list(client, limit=1001).status_code == 422


def test_an_agent_lists_only_the_tickets_she_may_see(api, alice, tickets, project):
    from postdesk.projects import services as project_services

    assert [r["title"] for r in ticket_list(api(alice)).json()["rows"]] == ["Ticket A"]
    project_services.update_settings(project, {"shared_tickets": True})
    assert ticket_list(api(alice)).json()["totalCount"] == 3
