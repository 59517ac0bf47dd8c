"""The agent workspace, tickets side, through Django's test client: the ticket list, Shared ticket handling in every
page, the thread in one column, the reply form (sender accounts, Display address, templates and their CC/BCC,
attachments, quoting, the collision warning), transfer and closing."""

import datetime as dt
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from postdesk.accounts.models import AgentState
from postdesk.core import clock
from postdesk.emails.models import Email, Kind
from postdesk.mailboxes.services import upsert_account
from postdesk.projects import services as project_services
from postdesk.testing.factories import inbound_email
from postdesk.tickets import services
from postdesk.tickets.models import Status, Ticket

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text_of(response) -> str:
    return response.content.decode()


def ticket_of(user, project, subject="Broken kettle", **kwargs) -> Ticket:
    return services.assign_email(inbound_email(project, subject=subject, **kwargs), by=user)


def listed(client, **params) -> list[str]:
    return re.findall(r'<tr data-href="/tickets/([^/]+)/"', text_of(client.get("/tickets/", params)))


@pytest.fixture
def templates(project):
    project_services.upsert_template(
        project,
        "thanks",
        {
            "subject": "Thanks, {{ name }}",
            "body": "Thank you {{ name }}, ticket {{ ticket }}.",
            "cc": ["team@acme.test"],
            "bcc": ["archive@acme.test"],
        },
    )
    project_services.upsert_template(project, "internal", {"body": "secret", "visible_to_agents": False})
    return {t.name: t for t in project.templates.all()}


# The ticket list ----------------------------------------------------------------------------------------------------


def test_the_ticket_list_shows_the_agents_tickets_with_unread_ones_in_bold(alice, project):
    first = ticket_of(alice, project, subject="First")
    second = ticket_of(alice, project, subject="Second")
    Ticket.objects.filter(pk=second.pk).update(unread=True)
    body = text_of(client_for(alice).get("/tickets/"))
    assert f'<tr data-href="/tickets/{second.number}/" data-id="{second.pk}" class="unread">' in body
    assert f'<tr data-href="/tickets/{first.number}/" data-id="{first.pk}">' in body


def test_the_ticket_list_filters_by_status_text_type_and_owner(alice, bob, project):
    project_services.upsert_ticket_type(project, "Complaint", "COMPLAINT")
    project_services.update_settings(project, {"shared_tickets": True})
    complaint = services.assign_email(
        inbound_email(project), title="Loud kettle", ticket_type=project.ticket_types.get(), by=alice
    )
    closed = ticket_of(alice, project, subject="Done")
    services.close_ticket(closed, by=alice)
    bobs = ticket_of(bob, project, subject="Bob's")
    client = client_for(alice)
    assert set(listed(client)) == {complaint.number, bobs.number}  # open by default
    assert listed(client, status="closed") == [closed.number]
    assert set(listed(client, status="all")) == {complaint.number, bobs.number, closed.number}
    assert listed(client, q="loud") == [complaint.number]
    assert listed(client, q=closed.number, status="all") == [closed.number]
    assert listed(client, type=project.ticket_types.get().pk) == [complaint.number]
    assert listed(client, mine="on") == [complaint.number]


def test_the_ticket_list_pages_through_older_tickets(alice, project, monkeypatch):
    from postdesk.tickets import views

    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    numbers = [ticket_of(alice, project, subject=f"t{i}").number for i in range(5)]
    client = client_for(alice)
    seen, url = [], "/tickets/"
    while url:
        body = text_of(client.get(url))
        seen += re.findall(r'<tr data-href="/tickets/([^/]+)/"', body)
        match = re.search(r'<a href="([^"]+)">Older tickets', body)
        url = match.group(1).replace("&amp;", "&") if match else None
    assert seen == list(reversed(numbers))


# Shared ticket handling ---------------------------------------------------------------------------------------------


def test_without_shared_ticket_handling_another_agents_ticket_is_not_found_anywhere(alice, bob, project, api):
    ticket = ticket_of(alice, project)
    email = ticket.emails.get()
    client = client_for(bob)
    assert ticket.number not in listed(client, status="all")
    assert client.get(f"/tickets/{ticket.number}/").status_code == 404
    for action, data in (("reply", {"body": "x"}), ("transfer", {"agent": "bob"}), ("close", {})):
        assert client.post(f"/tickets/{ticket.number}/{action}", data).status_code == 404, action
    assert client.get(f"/tickets/{ticket.number}/template").status_code == 404
    assert client.get(f"/emails/{email.pk}/").status_code == 404
    assert client.get(f"/emails/{email.pk}/body").status_code == 404
    assert api(bob).get(f"/api/v1/tickets/{ticket.number}").status_code == 404
    ticket.refresh_from_db()
    assert ticket.owner == alice and ticket.status == Status.PARK and ticket.sent_count == 0


def test_with_shared_ticket_handling_every_agent_of_the_project_handles_every_ticket(
    alice, bob, charlie, project, other_project
):
    project_services.update_settings(project, {"shared_tickets": True})
    ticket = ticket_of(alice, project)
    assert ticket.number in listed(client_for(bob))
    assert client_for(bob).get(f"/tickets/{ticket.number}/").status_code == 200
    assert client_for(charlie).get(f"/tickets/{ticket.number}/").status_code == 404  # another project's agent
    assert (
        client_for(bob).post(f"/tickets/{ticket.number}/close", {"substatus": "successful"}).status_code
        == 302
    )


# One ticket ---------------------------------------------------------------------------------------------------------


def test_the_ticket_page_shows_every_message_in_one_column_with_the_newest_expanded(
    alice, project, sender_account
):
    start = clock.now() - dt.timedelta(hours=1)
    first = inbound_email(project, subject="Kettle", text="The kettle is broken.", date=start)
    ticket = services.assign_email(first, by=alice)
    with clock.frozen(start + dt.timedelta(minutes=10)):
        services.reply(ticket, body="Please send a photo.", by=alice)
    later = inbound_email(
        project, subject="Re: Kettle", text="Here it is.", date=start + dt.timedelta(minutes=20)
    )
    services.assign_email(later, ticket=ticket, by=alice)
    body = text_of(client_for(alice).get(f"/tickets/{ticket.number}/"))
    messages = re.findall(r'<details class="message (in|out)" id="email-(\d+)"( open)?>', body)
    reply = Email.objects.get(kind=Kind.AGENT_REPLY)
    assert messages == [("in", str(first.pk), ""), ("out", str(reply.pk), ""), ("in", str(later.pk), " open")]
    assert body.count('class="thread"') == 1
    assert "Please send a photo." in body and "Here it is." in body


def test_a_ticket_page_can_expand_a_chosen_message(alice, project):
    start = clock.now() - dt.timedelta(hours=1)
    first = inbound_email(project, date=start)
    ticket = services.assign_email(first, by=alice)
    services.assign_email(
        inbound_email(project, date=start + dt.timedelta(minutes=5)), ticket=ticket, by=alice
    )
    body = text_of(client_for(alice).get(f"/tickets/{ticket.number}/", {"open": first.pk}))
    assert f'id="email-{first.pk}" open>' in body


def test_the_owner_opening_a_ticket_clears_unread_and_is_in_email_status(alice, bob, project):
    project_services.update_settings(project, {"shared_tickets": True})
    ticket = ticket_of(alice, project)
    Ticket.objects.filter(pk=ticket.pk).update(unread=True)
    client_for(bob).get(f"/tickets/{ticket.number}/")
    ticket.refresh_from_db()
    assert ticket.unread  # only the owner reads it
    client_for(alice).get(f"/tickets/{ticket.number}/")
    ticket.refresh_from_db()
    alice.refresh_from_db()
    assert not ticket.unread and alice.state == AgentState.EMAIL


# The reply form -----------------------------------------------------------------------------------------------------


def test_the_reply_form_offers_the_projects_sender_accounts_with_the_default_preselected(
    alice, project, sender_account, smtp_sink
):
    from postdesk.projects.services import set_sender_accounts

    other, _ = upsert_account(
        {"name": "sales-out", "protocol": "smtp", "address": "sales@acme.test", "display_name": "Acme Sales"}
        | {"host": "127.0.0.1", "port": smtp_sink.port, "security": "none", "auth": "none"}
    )
    set_sender_accounts(project, [sender_account, other], default=sender_account)
    ticket = ticket_of(alice, project)
    body = text_of(client_for(alice).get(f"/tickets/{ticket.number}/"))
    assert (
        f'<option value="{sender_account.pk}" selected>Acme Support &lt;support@acme.test&gt;</option>'
        in body
    )
    assert f'<option value="{other.pk}">Acme Sales &lt;sales@acme.test&gt;</option>' in body
    project_services.update_settings(project, {"display_address": False})
    body = text_of(client_for(alice).get(f"/tickets/{ticket.number}/"))
    assert "support@acme.test</option>" not in body and ">Acme Support</option>" in body
    response = client_for(alice).post(
        f"/tickets/{ticket.number}/reply", {"body": "From sales", "sender_account": other.pk}
    )
    assert response.status_code == 302
    assert Email.objects.get(kind=Kind.AGENT_REPLY).account == other


def test_a_template_fills_the_subject_text_and_shows_cc_and_bcc_as_the_project_says(
    alice, project, templates, sender_account
):
    ticket = ticket_of(alice, project)
    client = client_for(alice)
    page = text_of(client.get(f"/tickets/{ticket.number}/"))
    assert ">thanks</option>" in page and ">internal</option>" not in page  # only templates visible to agents
    assert f'hx-get="/tickets/{ticket.number}/template"' in page
    part = text_of(client.get(f"/tickets/{ticket.number}/template", {"template": templates["thanks"].pk}))
    assert f"Thank you Carla Customer, ticket {ticket.number}." in part
    assert "team@acme.test" in part and "archive@acme.test" not in part  # Display template BCC is off
    assert (
        f'hx-swap-oob="true"><span class="muted">Subject</span> Thanks, Carla Customer [{ticket.number}]'
        in part
    )
    project_services.update_settings(project, {"display_template_cc": False, "display_template_bcc": True})
    part = text_of(client.get(f"/tickets/{ticket.number}/template", {"template": templates["thanks"].pk}))
    assert "team@acme.test" not in part and "archive@acme.test" in part
    assert "secret" not in text_of(
        client.get(f"/tickets/{ticket.number}/template", {"template": templates["internal"].pk})
    )
    response = client.post(
        f"/tickets/{ticket.number}/reply", {"body": "Hello.", "template": templates["thanks"].pk}
    )
    assert response.status_code == 302
    reply = Email.objects.get(kind=Kind.AGENT_REPLY)
    assert (reply.cc, reply.bcc, reply.template) == (
        ["team@acme.test"],
        ["archive@acme.test"],
        templates["thanks"],
    )
    assert reply.subject == f"Thanks, Carla Customer [{ticket.number}]"
    assert reply.content.text.startswith(f"Hello.\n\nThank you Carla Customer, ticket {ticket.number}.")


def test_a_template_hidden_from_agents_is_refused(alice, project, templates, sender_account):
    ticket = ticket_of(alice, project)
    response = client_for(alice).post(
        f"/tickets/{ticket.number}/reply", {"body": "x", "template": templates["internal"].pk}
    )
    assert response.status_code == 422 and not Email.objects.filter(kind=Kind.AGENT_REPLY).exists()


def test_a_reply_quotes_the_message_it_answers_and_carries_attachments(alice, project, sender_account):
    start = clock.now() - dt.timedelta(hours=1)
    first = inbound_email(project, text="First question", date=start)
    ticket = services.assign_email(first, by=alice)
    services.assign_email(inbound_email(project, text="Second question"), ticket=ticket, by=alice)
    client = client_for(alice)
    page = text_of(client.get(f"/tickets/{ticket.number}/", {"reply_to": first.pk}))
    assert f'name="in_reply_to" value="{first.pk}"' in page and "&gt; First question" in page
    files = [
        SimpleUploadedFile("invoice.pdf", b"%PDF-1.4 invoice", content_type="application/pdf"),
        SimpleUploadedFile("notes.txt", b"some notes", content_type="bogus type\r\nX: y"),
    ]
    response = client.post(
        f"/tickets/{ticket.number}/reply",
        {"body": "See attached.", "in_reply_to": first.pk, "attachments": files},
    )
    assert response.status_code == 302
    reply = Email.objects.get(kind=Kind.AGENT_REPLY)
    raw = bytes(reply.raw.data)
    assert reply.in_reply_to == first.message_id and reply.has_attachments
    assert b'filename="invoice.pdf"' in raw and b'filename="notes.txt"' in raw
    assert b"Content-Type: application/octet-stream" in raw and b"X: y" not in raw
    assert "> First question" in reply.content.text and "Second question" not in reply.content.text


def test_an_invalid_reply_is_shown_in_the_form_and_nothing_is_queued(alice, project, sender_account):
    ticket = ticket_of(alice, project)
    client = client_for(alice)
    response = client.post(f"/tickets/{ticket.number}/reply", {"body": "  "})
    assert response.status_code == 422 and "the reply is empty" in text_of(response)
    response = client.post(
        f"/tickets/{ticket.number}/reply", {"body": "x", "cc": "a@example.com\r\nBcc: victim@evil.test"}
    )
    assert response.status_code == 422 and 'class="field-error"' in text_of(response)
    assert not Email.objects.filter(kind=Kind.AGENT_REPLY).exists()


def test_the_collision_warning_names_who_replied_and_send_anyway_sends(alice, bob, project, sender_account):
    project_services.update_settings(project, {"shared_tickets": True})
    ticket = ticket_of(alice, project)
    client = client_for(alice)
    page = text_of(client.get(f"/tickets/{ticket.number}/"))
    opened_at = re.search(r'name="opened_at" value="([^"]+)"', page).group(1)
    assert text_of(client.get(f"/tickets/{ticket.number}/collision", {"opened_at": opened_at})).strip() == ""
    client_for(bob).post(f"/tickets/{ticket.number}/reply", {"body": "Bob was faster."})
    poll = text_of(client.get(f"/tickets/{ticket.number}/collision", {"opened_at": opened_at}))
    assert "Bob replied to this ticket since you opened it." in poll
    data = {"body": "Alice's answer", "opened_at": opened_at}
    response = client.post(f"/tickets/{ticket.number}/reply", data)
    body = text_of(response)
    assert response.status_code == 409 and "Bob replied to this ticket since you opened it" in body
    assert "Bob was faster." in body and "Alice&#x27;s answer</textarea>" in body
    assert '<button type="submit" name="force" value="1" class="primary">Send anyway</button>' in body
    assert Email.objects.filter(kind=Kind.AGENT_REPLY).count() == 1
    assert client.post(f"/tickets/{ticket.number}/reply", {**data, "force": "1"}).status_code == 302
    assert Email.objects.filter(kind=Kind.AGENT_REPLY, sent_by=alice).count() == 1


def test_a_project_without_sender_accounts_says_so(alice, project):
    ticket = ticket_of(alice, project)
    assert "This project has no sender account" in text_of(
        client_for(alice).get(f"/tickets/{ticket.number}/")
    )
    response = client_for(alice).post(f"/tickets/{ticket.number}/reply", {"body": "x"})
    assert response.status_code == 422 and "the project has no sender account" in text_of(response)


# Transfer and close -------------------------------------------------------------------------------------------------


def test_transfer_hands_the_ticket_to_another_agent(alice, bob, sam, charlie, project, other_project):
    ticket = ticket_of(alice, project)
    client = client_for(alice)
    page = text_of(client.get(f"/tickets/{ticket.number}/"))
    assert (
        '<option value="bob">Bob (agent)</option>' in page
        and '<option value="sam">Sam (supervisor)</option>' in page
    )
    assert 'value="charlie"' not in page and 'value="alice"' not in page
    response = client.post(f"/tickets/{ticket.number}/transfer", {"agent": "bob"})
    assert response.status_code == 302 and response.url == "/tickets/"  # alice no longer sees it
    ticket.refresh_from_db()
    assert ticket.owner == bob and ticket.unread
    assert f"Ticket {ticket.number} handed to Bob." in text_of(client.get("/tickets/"))
    assert ticket.number in listed(client_for(bob))
    assert client_for(bob).post(f"/tickets/{ticket.number}/transfer", {"agent": "charlie"}).status_code == 422


def test_transfer_is_not_offered_when_change_pref_user_is_off(alice, project):
    project_services.update_settings(project, {"change_pref_user": False})
    ticket = ticket_of(alice, project)
    assert "Hand to another agent" not in text_of(client_for(alice).get(f"/tickets/{ticket.number}/"))
    response = client_for(alice).post(f"/tickets/{ticket.number}/transfer", {"agent": "bob"})
    assert response.status_code == 403 and "Change pref user setting is off" in text_of(response)
    ticket.refresh_from_db()
    assert ticket.owner == alice


def test_closing_a_ticket_with_its_outcome(alice, project):
    ticket = ticket_of(alice, project)
    response = client_for(alice).post(f"/tickets/{ticket.number}/close", {"substatus": "unsuccessful"})
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert (ticket.status, ticket.substatus) == ("closed", "unsuccessful")
    assert (
        client_for(alice).post(f"/tickets/{ticket.number}/close", {"substatus": "bogus"}).status_code == 422
    )
