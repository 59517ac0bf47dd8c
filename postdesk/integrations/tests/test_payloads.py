"""The webhook payloads field by field: exactly the vendor's keys with the documented types."""

from __future__ import annotations

import pytest

from postdesk.integrations import payloads
from postdesk.integrations.tests.test_compat import BOOL, INT, NULL, STR, TICKET_TYPES, TIME_T, assert_shape
from postdesk.testing.factories import raw_message, receive

EMAIL_TYPES = {
    "emailId": {INT},
    "projectId": {STR},
    "entityId": {INT, NULL},
    "contactId": {INT, NULL},
    "ticketId": {INT, NULL},
    "replyEmailId": {INT, NULL},
    "userId": {INT, NULL},
    "direction": {STR},
    "from": {STR},
    "fromName": {STR},
    "fromAddress": {STR},
    "to": {STR},
    "cc": {STR},
    "bcc": {STR},
    "lastModifiedTime": {TIME_T},
    "status": {STR},
    "forwardEmailId": {NULL},
    "subject": {STR},
    "replyTo": {STR},
    "messageId": {STR},
    "inReplyTo": {STR},
    "sentTime": {TIME_T, NULL},
    "receivedTime": {TIME_T, NULL},
    "body": {STR},
}
assert BOOL  # (no booleans in the email webhook)


def test_the_documented_email_fields_are_the_ones_sent():
    assert tuple(EMAIL_TYPES) == payloads.EMAIL_FIELDS


@pytest.mark.django_db(transaction=True)
def test_email_and_ticket_payloads_have_exactly_the_vendors_fields(
    api, alice, forwarding, sender_account, hook, receiver, project
):
    from postdesk.records.services import create_record

    create_record(project, name="Carla Customer", email="customer@example.com")
    first = receive(
        forwarding, raw_message(message_id="<shape-1@example.com>", subject="Kettle", body="Broken.")
    )
    number = api(alice).post(f"/api/v1/emails/{first.pk}/ticket", {"new": {}}).json()["number"]
    api(alice).post(
        f"/api/v1/tickets/{number}/reply",
        {"body": "Sorry!", "cc": ["team@acme.test"], "bcc": ["archive@acme.test"]},
    )
    by_event = {}
    for a in receiver.arrivals:
        by_event.setdefault(a.event, []).append(a.body)
    received, sent = by_event["email.received"][0], by_event["email.sent"][0]
    assert_shape(received, EMAIL_TYPES)
    assert_shape(sent, EMAIL_TYPES)
    assert received["direction"] == "in" and received["receivedTime"] and received["sentTime"] is None
    assert (
        received["projectId"] == "101"
        and received["body"].startswith("Broken.")
        and received["userId"] is None
    )
    assert received["from"] == "Carla Customer <customer@example.com>" and received["ticketId"] is None
    assert sent["direction"] == "out" and sent["sentTime"] and sent["receivedTime"] is None
    assert sent["replyEmailId"] == first.pk and sent["userId"] == alice.pk and sent["status"] == "queued"
    assert (sent["cc"], sent["bcc"]) == ("team@acme.test", "archive@acme.test")
    assert sent["entityId"] == sent["contactId"] is not None  # the ticket's customer record
    [add] = by_event["ticket.add"]
    assert add["action"] == "add"
    assert_shape(add["ticket"], TICKET_TYPES)
    for update in by_event["ticket.update"]:
        assert update["action"] == "update"
        assert set(payloads.TICKET_IDENTIFIERS) <= set(update["ticket"]) <= set(TICKET_TYPES)


def test_a_display_name_with_specials_is_quoted():
    assert payloads.mailbox("Doe, Jane", "jane@example.com") == '"Doe, Jane" <jane@example.com>'
    assert payloads.mailbox("", "jane@example.com") == "jane@example.com"
    assert payloads.mailbox('Say "hi"', "a@b.c") == '"Say \\"hi\\"" <a@b.c>'
