"""The ticket API: assign, list, detail, reply, close, transfer, with the same permissions as the UI."""

import pytest

from postdesk.emails.models import Email, Kind, Status
from postdesk.outbound import sender
from postdesk.projects import services as project_services
from postdesk.testing.factories import inbound_email
from postdesk.tickets.models import Ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def email(project):
    return inbound_email(project, subject="Broken kettle")


def test_an_agent_turns_an_email_into_a_new_ticket_with_a_type(api, alice, email, project):
    project_services.upsert_ticket_type(project, "Complaint", "COMPLAINT")
    response = api(alice).post(f"/api/v1/emails/{email.pk}/ticket", {"new": {"type": "COMPLAINT"}})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["title"] == "Broken kettle" and body["type"] == "COMPLAINT" and body["agent"] == "alice"
    assert body["number"].startswith("101-") and body["received_count"] == 1
    email.refresh_from_db()
    assert email.ticket.number == body["number"] and email.locked_by is None


def test_an_email_is_added_to_an_existing_ticket(api, alice, project, email):
    first = inbound_email(project, subject="Kettle again")
    ticket = api(alice).post(f"/api/v1/emails/{first.pk}/ticket", {"new": {"title": "Kettle"}}).json()
    response = api(alice).post(f"/api/v1/emails/{email.pk}/ticket", {"ticket": ticket["number"]})
    assert response.json()["received_count"] == 2
    detail = api(alice).get(f"/api/v1/tickets/{ticket['number']}").json()
    assert [e["id"] for e in detail["emails"]] == [email.pk, first.pk]  # thread order: by date


def test_the_request_must_name_a_ticket_or_a_new_one(api, alice, email):
    response = api(alice).post(f"/api/v1/emails/{email.pk}/ticket", {})
    assert response.status_code == 422 and response.json()["field"] == "ticket"
    response = api(alice).post(f"/api/v1/emails/{email.pk}/ticket", {"new": {"type": "NOPE"}})
    assert response.status_code == 422 and response.json()["field"] == "new.type"


def test_an_agent_of_another_project_cannot_see_the_email(api, charlie, other_project, email):
    assert api(charlie).post(f"/api/v1/emails/{email.pk}/ticket", {"new": {}}).status_code == 404
    assert api(charlie).get(f"/api/v1/emails/{email.pk}").status_code == 404


def test_without_shared_tickets_an_agent_cannot_open_another_agents_ticket(api, alice, bob, email):
    number = api(alice).post(f"/api/v1/emails/{email.pk}/ticket", {"new": {}}).json()["number"]
    assert api(bob).get(f"/api/v1/tickets/{number}").status_code == 404
    assert api(bob).post(f"/api/v1/tickets/{number}/close").status_code == 404
    assert number not in [t["number"] for t in api(bob).get("/api/v1/tickets").json()["items"]]


def test_with_shared_tickets_every_agent_of_the_project_sees_every_ticket(api, alice, bob, email, project):
    project_services.update_settings(project, {"shared_tickets": True})
    number = api(alice).post(f"/api/v1/emails/{email.pk}/ticket", {"new": {}}).json()["number"]
    assert api(bob).get(f"/api/v1/tickets/{number}").status_code == 200


def test_a_reply_is_queued_threaded_and_counted(api, alice, email, sender_account, smtp_sink, project):
    project_services.upsert_template(
        project,
        "thanks",
        {"subject": "Re: {{ subject }}", "body": "Thanks {{ name }}!", "cc": ["team@acme.test"]},
    )
    number = api(alice).post(f"/api/v1/emails/{email.pk}/ticket", {"new": {}}).json()["number"]
    response = api(alice).post(
        f"/api/v1/tickets/{number}/reply", {"body": "We are on it.", "template": "thanks"}
    )
    assert response.status_code == 201, response.content
    reply = Email.objects.get(pk=response.json()["id"])
    assert reply.kind == Kind.AGENT_REPLY and reply.status == Status.QUEUED and reply.sent_by == alice
    assert reply.in_reply_to == email.message_id and reply.to == ["customer@example.com"]
    assert reply.cc == ["team@acme.test"] and number in reply.subject
    text = reply.content.text
    assert (
        text.startswith("We are on it.")
        and "Thanks Carla Customer!" in text
        and "> Hello, I need help." in text
    )
    sender.deliver([reply.pk])
    assert len(smtp_sink.messages) == 1
    ticket = Ticket.objects.get(number=number)
    assert (ticket.sent_count, ticket.received_count) == (1, 1) and ticket.sla_seconds is not None


def test_a_reply_with_a_header_injection_in_cc_is_refused_and_nothing_is_queued(
    api, alice, email, sender_account
):
    number = api(alice).post(f"/api/v1/emails/{email.pk}/ticket", {"new": {}}).json()["number"]
    response = api(alice).post(
        f"/api/v1/tickets/{number}/reply", {"body": "x", "cc": ["a@example.com\r\nBcc: victim@evil.test"]}
    )
    assert response.status_code == 422 and "cc" in response.json()["field"]
    assert not Email.objects.filter(kind=Kind.AGENT_REPLY).exists()


def test_the_collision_warning_stops_a_reply_when_someone_else_replied_since(
    api, alice, bob, email, sender_account, project
):
    from postdesk.core import clock

    project_services.update_settings(project, {"shared_tickets": True})
    number = api(alice).post(f"/api/v1/emails/{email.pk}/ticket", {"new": {}}).json()["number"]
    opened = clock.now().isoformat()
    assert api(bob).post(f"/api/v1/tickets/{number}/reply", {"body": "Bob here"}).status_code == 201
    response = api(alice).post(f"/api/v1/tickets/{number}/reply", {"body": "Alice here", "opened_at": opened})
    assert response.status_code == 409 and "Bob" in response.json()["detail"]
    forced = api(alice).post(
        f"/api/v1/tickets/{number}/reply", {"body": "Alice", "opened_at": opened, "force": True}
    )
    assert forced.status_code == 201


def test_transfer_hands_the_ticket_to_another_agent_when_the_setting_allows(api, alice, bob, email, project):
    number = api(alice).post(f"/api/v1/emails/{email.pk}/ticket", {"new": {}}).json()["number"]
    response = api(alice).post(f"/api/v1/tickets/{number}/transfer", {"agent": "bob"})
    assert response.status_code == 200 and response.json()["agent"] == "bob"
    assert api(bob).get(f"/api/v1/tickets/{number}").status_code == 200
    project_services.update_settings(project, {"change_pref_user": False})
    assert api(bob).post(f"/api/v1/tickets/{number}/transfer", {"agent": "alice"}).status_code == 403


def test_closing_a_ticket(api, alice, email):
    number = api(alice).post(f"/api/v1/emails/{email.pk}/ticket", {"new": {}}).json()["number"]
    body = api(alice).post(f"/api/v1/tickets/{number}/close", {"substatus": "unsuccessful"}).json()
    assert (body["status"], body["substatus"]) == ("closed", "unsuccessful")


def test_the_ticket_list_filters_by_type_agent_and_status(api, sam, alice, project):
    project_services.upsert_ticket_type(project, "Complaint", "COMPLAINT")
    for i in range(3):
        e = inbound_email(project, subject=f"s{i}")
        api(alice).post(f"/api/v1/emails/{e.pk}/ticket", {"new": {"type": "COMPLAINT" if i else None}})
    supervisor = api(sam)
    assert len(supervisor.get("/api/v1/tickets", type="Complaint").json()["items"]) == 2
    assert len(supervisor.get("/api/v1/tickets", agent="alice", status="park").json()["items"]) == 3
    page = supervisor.get("/api/v1/tickets", limit=2).json()
    rest = supervisor.get("/api/v1/tickets", limit=2, cursor=page["next_cursor"]).json()
    assert len(page["items"]) == 2 and len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert supervisor.get("/api/v1/tickets", cursor="garbage!").status_code == 422
