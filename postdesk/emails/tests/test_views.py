"""The agent workspace, emails side, through Django's test client: the inbox, opening and locking, assigning, replying
to an email without a ticket, handing over and closing, the message document and its headers, inline images,
attachments, hostile mail rendered as text, and search."""

import datetime as dt
import re

import pytest
from django.test import Client

from postdesk.accounts.models import AgentState, AgentStateChange
from postdesk.core import clock
from postdesk.emails import search
from postdesk.emails.models import Email, Kind, Status
from postdesk.outbound import sender
from postdesk.projects import services as project_services
from postdesk.records.models import Record
from postdesk.testing import screens
from postdesk.testing.factories import inbound_email, receive
from postdesk.tickets import services as ticket_services

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text_of(response) -> str:
    return response.content.decode()


def inbox_subjects(client) -> list[str]:
    body = text_of(client.get("/inbox/rows"))
    return re.findall(r'<td class="col-subject"><a href="[^"]+">([^<]*)</a>', body)


@pytest.fixture
def english(project):
    return project.queues.get(name="English")


@pytest.fixture
def magyar(project):
    return project.queues.get(name="Magyar")


# The inbox ----------------------------------------------------------------------------------------------------------


def test_the_inbox_lists_new_emails_of_the_agents_queues_with_the_queue_column(
    alice, project, other_project, english, magyar
):
    inbound_email(project, subject="In English", queue=english)
    inbound_email(project, subject="In the default queue")
    inbound_email(project, subject="In Magyar", queue=magyar, language="hu")  # bob's queue only
    inbound_email(other_project, subject="Another project")
    response = client_for(alice).get("/inbox/")
    assert response.status_code == 200
    body = text_of(response)
    assert re.findall(r"<th [^>]*>(\w+)</th>", body) == ["Queue", "Language", "From", "Subject", "Received"]
    assert sorted(inbox_subjects(client_for(alice))) == ["In English", "In the default queue"]
    assert '<td class="col-queue">English</td>' in body and '<td class="col-queue">Default</td>' in body


def test_the_inbox_shows_the_oldest_emails_up_to_the_projects_list_size(alice, project, english):
    start = clock.now() - dt.timedelta(hours=1)
    for i in range(5):
        inbound_email(
            project,
            subject=f"mail {i}",
            queue=english if i % 2 else None,
            date=start + dt.timedelta(minutes=i),
        )
    project_services.update_settings(project, {"list_size": 3})
    assert inbox_subjects(client_for(alice)) == ["mail 0", "mail 1", "mail 2"]


def test_emails_on_a_ticket_or_closed_are_no_longer_new(alice, project):
    on_ticket = inbound_email(project, subject="on a ticket")
    closed = inbound_email(project, subject="closed")
    inbound_email(project, subject="still new")
    ticket_services.assign_email(on_ticket, by=alice)
    ticket_services.close_email(closed, by=alice)
    assert inbox_subjects(client_for(alice)) == ["still new"]


def test_an_email_one_agent_opened_leaves_the_other_agents_list_until_the_lock_goes_stale(
    alice, bob, project, frozen_clock
):
    email = inbound_email(project, subject="Wanted by both")
    assert inbox_subjects(client_for(bob)) == ["Wanted by both"]
    assert client_for(alice).get(f"/emails/{email.pk}/").status_code == 200
    assert inbox_subjects(client_for(bob)) == []
    assert "opened by you" in text_of(client_for(alice).get("/inbox/rows"))
    clock.set_now(clock.now() + ticket_services.LOCK_TIMEOUT + dt.timedelta(seconds=1))
    assert inbox_subjects(client_for(bob)) == ["Wanted by both"]


def test_the_live_refresh_returns_only_the_list_body_and_keeps_polling(alice, project):
    inbound_email(project, subject="Polled")
    alice.state = AgentState.EMAIL
    alice.save()
    body = text_of(client_for(alice).get("/inbox/rows", HTTP_HX_REQUEST="true"))
    assert body.lstrip().startswith('<tbody id="inbox-rows"') and "<html" not in body
    assert 'hx-trigger="every 5s"' in body and 'hx-swap="outerHTML"' in body
    alice.refresh_from_db()
    assert alice.state == AgentState.EMAIL  # polling changes nothing


def test_back_on_the_list_the_agent_is_available_again(alice, project):
    email = inbound_email(project)
    client = client_for(alice)
    client.get(f"/emails/{email.pk}/")
    alice.refresh_from_db()
    assert alice.state == AgentState.EMAIL
    client.get("/inbox/")
    alice.refresh_from_db()
    assert alice.state == AgentState.AVAILABLE


# Opening an email -------------------------------------------------------------------------------------------------


def test_opening_an_email_locks_it_to_the_agent_who_is_then_in_email_status(alice, project, frozen_clock):
    email = inbound_email(project, subject="Lock me")
    response = client_for(alice).get(f"/emails/{email.pk}/")
    assert response.status_code == 200
    email.refresh_from_db()
    assert email.locked_by == alice and email.locked_at == clock.now()
    assert "Locked by you at 09:30" in text_of(response)
    alice.refresh_from_db()
    assert alice.state == AgentState.EMAIL
    assert AgentStateChange.objects.filter(user=alice, state=AgentState.EMAIL, email=email).exists()


def test_an_email_another_agent_has_open_answers_409_naming_them(alice, bob, project):
    email = inbound_email(project, subject="Busy")
    client_for(alice).get(f"/emails/{email.pk}/")
    response = client_for(bob).get(f"/emails/{email.pk}/")
    assert response.status_code == 409
    assert "Alice is working on this email" in text_of(response)
    assert 'action="/emails/' not in text_of(response)  # no actions offered


def test_with_lock_emails_off_opening_does_not_lock(alice, bob, project):
    project_services.update_settings(project, {"lock_emails": False})
    email = inbound_email(project, subject="Shared")
    client_for(alice).get(f"/emails/{email.pk}/")
    assert client_for(bob).get(f"/emails/{email.pk}/").status_code == 200
    assert inbox_subjects(client_for(bob)) == ["Shared"]


def test_an_agent_cannot_open_an_email_outside_their_queues_or_projects(
    alice, charlie, project, other_project, magyar
):
    hungarian = inbound_email(project, queue=magyar, language="hu")
    elsewhere = inbound_email(other_project)
    assert client_for(alice).get(f"/emails/{hungarian.pk}/").status_code == 404
    assert client_for(alice).get(f"/emails/{elsewhere.pk}/body").status_code == 404
    assert client_for(charlie).get(f"/emails/{hungarian.pk}/").status_code == 404
    hungarian.refresh_from_db()
    assert hungarian.locked_by is None


def test_an_email_on_a_ticket_opens_on_its_tickets_page(alice, project):
    email = inbound_email(project)
    ticket = ticket_services.assign_email(email, by=alice)
    response = client_for(alice).get(f"/emails/{email.pk}/")
    assert response.status_code == 302
    assert response.url == f"/tickets/{ticket.number}/?open={email.pk}#email-{email.pk}"


# Email -> ticket ----------------------------------------------------------------------------------------------------


def test_an_opened_email_becomes_a_ticket_with_a_type_and_an_edited_title(alice, project):
    project_services.upsert_ticket_type(project, "Complaint", "COMPLAINT")
    kind = project.ticket_types.get()
    email = inbound_email(project, subject="Broken kettle")
    client = client_for(alice)
    page = text_of(client.get(f"/emails/{email.pk}/"))
    assert 'value="Broken kettle"' in page and f'<option value="{kind.pk}">Complaint</option>' in page
    response = client.post(
        f"/emails/{email.pk}/assign", {"mode": "new", "ticket_type": kind.pk, "title": "Kettle broke twice"}
    )
    email.refresh_from_db()
    ticket = email.ticket
    assert response.status_code == 302 and response.url == f"/tickets/{ticket.number}/"
    assert (ticket.title, ticket.type, ticket.owner) == ("Kettle broke twice", kind, alice)
    assert email.locked_by is None  # the lock ends on assign
    assert f"is now ticket {ticket.number}" in text_of(client.get(response.url))


def test_an_email_joins_an_existing_ticket_found_by_number_sender_or_title(alice, project):
    first = inbound_email(project, subject="Kettle, part one", sender="kim@example.com")
    ticket = ticket_services.assign_email(first, title="Kettle saga", by=alice)
    second = inbound_email(project, subject="Kettle, part two", sender="kim@example.com")
    client = client_for(alice)
    page = text_of(client.get(f"/emails/{second.pk}/"))
    assert f'hx-get="/emails/{second.pk}/tickets" hx-trigger="load"' in page  # loaded after the page
    offered = text_of(client.get(f"/emails/{second.pk}/tickets"))
    assert f'value="{ticket.number}"' in offered  # without a query: the tickets of the same sender
    for q in (ticket.number[-6:], "kim@example", "saga"):
        found = text_of(client.get(f"/emails/{second.pk}/tickets", {"q": q}))
        assert f'value="{ticket.number}"' in found, q
    assert "No ticket matches" in text_of(
        client.get(f"/emails/{second.pk}/tickets", {"q": "nothing-like-it"})
    )
    response = client.post(f"/emails/{second.pk}/assign", {"mode": "existing", "ticket": ticket.number})
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.received_count == 2 and set(ticket.emails.values_list("id", flat=True)) == {
        first.pk,
        second.pk,
    }


def test_an_agent_cannot_add_an_email_to_a_ticket_they_may_not_see(alice, bob, project):
    bobs = ticket_services.assign_email(inbound_email(project, sender="kim@example.com"), by=bob)
    email = inbound_email(project, sender="kim@example.com")
    client = client_for(alice)
    assert f'value="{bobs.number}"' not in text_of(
        client.get(f"/emails/{email.pk}/tickets", {"q": bobs.number})
    )
    response = client.post(f"/emails/{email.pk}/assign", {"mode": "existing", "ticket": bobs.number})
    assert response.status_code == 404 and "no ticket" in text_of(response)
    email.refresh_from_db()
    assert email.ticket is None


def test_a_customer_record_is_created_from_the_sender_only_when_the_setting_allows(alice, project):
    email = inbound_email(project, subject="New customer", sender="new@example.com")
    client = client_for(alice)
    assert "Create a customer record" not in text_of(client.get(f"/emails/{email.pk}/"))
    response = client.post(f"/emails/{email.pk}/assign", {"mode": "new", "create_record": "on"})
    assert response.status_code == 403 and "may not create records" in text_of(response)
    assert not Record.objects.exists()
    project_services.update_settings(project, {"agents_create_records": True})
    assert "Create a customer record" in text_of(client.get(f"/emails/{email.pk}/"))
    client.post(f"/emails/{email.pk}/assign", {"mode": "new", "create_record": "on"})
    record = Record.objects.get()
    email.refresh_from_db()
    assert (record.email, record.name) == (
        "new@example.com",
        "Carla Customer",
    ) and email.ticket.record == record


def test_acting_on_an_email_another_agent_has_open_is_refused(alice, bob, project):
    email = inbound_email(project)
    client_for(alice).get(f"/emails/{email.pk}/")
    response = client_for(bob).post(f"/emails/{email.pk}/assign", {"mode": "new"})
    assert response.status_code == 409 and "Alice is working on this email" in text_of(response)
    email.refresh_from_db()
    assert email.ticket is None and email.locked_by == alice


def test_replying_to_an_email_without_a_ticket_makes_a_ticket_and_queues_the_reply(
    alice, project, sender_account, smtp_sink
):
    project_services.upsert_ticket_type(project, "Delivery", "DELIVERY")
    email = inbound_email(project, subject="Where is it?")
    client = client_for(alice)
    client.get(f"/emails/{email.pk}/")
    response = client.post(
        f"/emails/{email.pk}/reply",
        {
            "body": "It left our warehouse today.",
            "ticket_type": project.ticket_types.get().pk,
            "title": "",
            "sender_account": sender_account.pk,
            "in_reply_to": email.pk,
        },
    )
    email.refresh_from_db()
    assert response.status_code == 302 and response.url == f"/tickets/{email.ticket.number}/"
    assert email.ticket.title == "Where is it?" and email.ticket.type.export_value == "DELIVERY"
    reply = Email.objects.get(kind=Kind.AGENT_REPLY)
    assert reply.ticket == email.ticket and reply.in_reply_to == email.message_id
    assert reply.references.endswith(email.message_id) and reply.account == sender_account
    assert (
        reply.content.text.startswith("It left our warehouse today.")
        and "> Hello, I need help." in reply.content.text
    )
    sender.deliver([reply.pk])  # jobs run after the commit, which a test transaction never reaches
    assert (
        len(smtp_sink.messages) == 1
        and b"In-Reply-To: " + email.message_id.encode() in smtp_sink.messages[0].data
    )


def test_a_failed_reply_to_an_email_makes_no_ticket(alice, project, sender_account):
    email = inbound_email(project)
    response = client_for(alice).post(f"/emails/{email.pk}/reply", {"body": "  ", "in_reply_to": email.pk})
    assert response.status_code == 422 and "the reply is empty" in text_of(response)
    email.refresh_from_db()
    assert email.ticket is None and not project.tickets.exists()


def test_an_email_is_handed_to_another_agent_who_then_has_it(alice, bob, project):
    email = inbound_email(project, subject="For Bob")
    client = client_for(alice)
    client.get(f"/emails/{email.pk}/")
    response = client.post(f"/emails/{email.pk}/transfer", {"agent": "bob"})
    assert response.status_code == 302 and response.url == "/inbox/"
    email.refresh_from_db()
    assert email.locked_by == bob
    assert inbox_subjects(client_for(bob)) == ["For Bob"] and inbox_subjects(client) == []
    project_services.update_settings(project, {"change_pref_user": False})
    assert "Hand to another agent" not in text_of(client_for(bob).get(f"/emails/{email.pk}/"))
    assert client_for(bob).post(f"/emails/{email.pk}/transfer", {"agent": "alice"}).status_code == 403


def test_an_email_closed_without_a_ticket_leaves_the_list(alice, project):
    email = inbound_email(project, subject="Spam")
    response = client_for(alice).post(f"/emails/{email.pk}/close")
    assert response.status_code == 302
    email.refresh_from_db()
    assert email.status == Status.CLOSED and email.locked_by is None
    assert inbox_subjects(client_for(alice)) == []


def test_pages_change_nothing_on_get_and_actions_need_csrf(alice, project):
    email = inbound_email(project)
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    for path in ("assign", "reply", "transfer", "close", "images"):
        assert client.post(f"/emails/{email.pk}/{path}", {"mode": "new"}).status_code == 403, path
        assert client.get(f"/emails/{email.pk}/{path}").status_code in (404, 405), path
    email.refresh_from_db()
    assert email.ticket is None and email.status == Status.NEW


# The message document, images and attachments --------------------------------------------------------------------


def test_the_message_document_is_sandboxed_and_blocks_remote_images_until_allowed(
    alice, bob, project, forwarding
):
    email = screens.customer_email(forwarding)
    assert email.has_remote_images
    client = client_for(alice)
    page = text_of(client.get(f"/emails/{email.pk}/"))
    assert (
        '<iframe class="body-frame' in page and 'sandbox=""' in page and "Remote images are blocked" in page
    )
    response = client.get(f"/emails/{email.pk}/body")
    csp = response["Content-Security-Policy"]
    assert csp.startswith("default-src 'none'; img-src data: http://testserver/emails/") and csp.endswith(
        "; sandbox"
    )
    assert "https:" not in csp and "script-src" not in csp
    assert response["X-Frame-Options"] == "SAMEORIGIN" and response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "no-referrer"
    assert "tracker.example.net" in text_of(response) and ' src="https://tracker' not in text_of(response)

    allowed = client.post(f"/emails/{email.pk}/images", HTTP_HX_REQUEST="true")
    assert allowed.status_code == 200 and "Remote images are blocked" not in text_of(allowed)
    assert f'src="/emails/{email.pk}/body?images=1"' in text_of(allowed)
    response = client_for(bob).get(f"/emails/{email.pk}/body")  # the choice is the email's
    assert " https: http:;" in response["Content-Security-Policy"]
    assert ' src="https://tracker.example.net/pixel.gif"' in text_of(response)


def test_plain_text_messages_are_escaped_in_the_page_and_in_the_document(alice, project):
    email = inbound_email(project, text="<script>alert(1)</script> & <b>bold</b>")
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;"
    client = client_for(alice)
    assert f'<pre class="text">{escaped}</pre>' in text_of(client.get(f"/emails/{email.pk}/"))
    assert f"<pre>{escaped}</pre>" in text_of(client.get(f"/emails/{email.pk}/body"))


def test_inline_images_are_served_only_as_raster_images_with_a_token_from_the_document(
    alice, project, forwarding
):
    email = receive(forwarding, screens.hostile_raw())
    png = email.attachments.get(content_type="image/png")
    svg = email.attachments.get(content_type="image/svg+xml")
    document = text_of(client_for(alice).get(f"/emails/{email.pk}/body"))
    urls = re.findall(r'src="(/emails/\d+/inline/\d+\?t=[^"]+)"', document)
    assert len(urls) == 2 and all("&amp;" not in u for u in urls)
    anonymous = (
        Client()
    )  # the sandboxed document has an opaque origin: no session cookie comes with its requests
    image = anonymous.get(next(u for u in urls if f"/inline/{png.pk}?" in u))
    assert image.status_code == 200 and image["Content-Type"] == "image/png" and image.content == screens.PNG
    assert image["X-Content-Type-Options"] == "nosniff" and image["Content-Security-Policy"].endswith(
        "sandbox"
    )
    assert anonymous.get(next(u for u in urls if f"/inline/{svg.pk}?" in u)).status_code == 404
    assert client_for(alice).get(f"/emails/{email.pk}/inline/{svg.pk}").status_code == 404
    assert anonymous.get(f"/emails/{email.pk}/inline/{png.pk}").status_code == 404
    assert anonymous.get(f"/emails/{email.pk}/inline/{png.pk}?t=forged").status_code == 404
    other = next(u for u in urls if f"/inline/{png.pk}?" in u).replace(
        f"/inline/{png.pk}?", f"/inline/{svg.pk}?"
    )
    assert anonymous.get(other).status_code == 404  # a token names one image


def test_attachments_are_served_only_as_downloads(alice, charlie, project, forwarding, other_project):
    email = receive(forwarding, screens.hostile_raw())
    attachment = email.attachments.get(inline=False)
    response = client_for(alice).get(f"/emails/{email.pk}/attachments/{attachment.pk}")
    assert response.status_code == 200 and response.content == b"<script>alert('attachment')</script>"
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff" and response["Content-Security-Policy"].endswith(
        "sandbox"
    )
    assert client_for(charlie).get(f"/emails/{email.pk}/attachments/{attachment.pk}").status_code == 404


def test_hostile_subject_name_and_attachment_name_render_as_text_everywhere(alice, project, forwarding):
    email = receive(forwarding, screens.hostile_raw())
    search.index([(email.pk, project.pk, email.subject, "hostile-marker-words", email.from_address)])
    client = client_for(alice)
    pages = {
        "list": client.get("/inbox/"),
        "thread": client.get(f"/emails/{email.pk}/"),
        "search": client.get("/search/", {"q": "hostile-marker-words"}),
    }
    client.post(f"/emails/{email.pk}/assign", {"mode": "new"})
    email.refresh_from_db()
    pages["ticket"] = client.get(
        f"/tickets/{email.ticket.number}/"
    )  # with the notification naming the subject
    pages["tickets"] = client.get("/tickets/")
    for name, response in pages.items():
        body = text_of(response)
        assert response.status_code == 200, name
        assert "<script>alert" not in body and "<img src=x" not in body, name
    assert "&lt;script&gt;alert(&quot;subject&quot;)&lt;/script&gt;" in text_of(pages["list"])
    assert "&lt;img src=x onerror=alert(&quot;name&quot;)&gt;" in text_of(pages["thread"])
    assert "&lt;img src=x onerror=alert(&quot;file&quot;)&gt;.html" in text_of(pages["ticket"])
    assert "&lt;script&gt;alert(&quot;subject&quot;)&lt;/script&gt;" in text_of(pages["search"])
    assert "“&lt;script&gt;alert(&quot;subject&quot;)" in text_of(pages["ticket"])  # the notification
    document = text_of(client.get(f"/emails/{email.pk}/body"))
    for bad in (
        "<script",
        "onerror",
        "onload",
        "onmouseover",
        "javascript:",
        "<svg",
        "<iframe",
        "<form",
        "<object",
    ):
        assert bad not in document.lower(), bad


# Search -------------------------------------------------------------------------------------------------------------


def indexed(email, text="") -> Email:
    search.index([(email.pk, email.project_id, email.subject, text, email.from_address)])
    return email


def test_search_finds_emails_and_tickets_the_agent_may_see_with_the_queue_column(
    alice, bob, project, english, magyar, other_project
):
    mine = indexed(inbound_email(project, subject="Kettle leaks", queue=english), "water everywhere")
    indexed(inbound_email(project, subject="Kettle in Hungarian", queue=magyar), "water")
    indexed(inbound_email(other_project, subject="Kettle elsewhere"), "water")
    bobs = indexed(inbound_email(project, subject="Kettle for Bob"), "water")
    ticket_services.assign_email(bobs, title="Bob's kettle", by=bob)
    own = ticket_services.assign_email(
        indexed(inbound_email(project, subject="Lid")), title="Kettle lid", by=alice
    )
    response = client_for(alice).get("/search/", {"q": "kettle"})
    body = text_of(response)
    assert response.status_code == 200
    assert "Kettle leaks" in body and '<td class="col-queue">English</td>' in body and ">Queue</th>" in body
    assert "Hungarian" not in body and "elsewhere" not in body and "Bob" not in body
    assert own.number in body
    assert "Kettle leaks" in text_of(client_for(alice).get("/search/", {"q": "water every"}))
    assert mine.pk


def test_search_is_offered_only_when_the_setting_is_on_in_one_of_the_agents_projects(alice, project):
    client = client_for(alice)
    assert 'href="/search/"' in text_of(client.get("/inbox/"))
    project_services.update_settings(project, {"search": False})
    assert 'href="/search/"' not in text_of(client.get("/inbox/"))
    assert client.get("/search/", {"q": "x"}).status_code == 403
