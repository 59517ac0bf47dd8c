"""Acceptance 1, the permission half, in a real browser: without Shared ticket handling an agent cannot open another
agent's ticket, in the UI or in the API (404: the ticket does not exist for them); with it, they can."""

import pytest
from playwright.sync_api import expect

from postdesk.projects import services as project_services
from postdesk.testing.browser import login
from postdesk.testing.factories import inbound_email
from postdesk.tickets import services

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_agent_without_shared_ticket_handling_cannot_open_another_agents_ticket(
    page, live_server, alice, bob, project
):
    email = inbound_email(project, subject="Alice's case")
    ticket = services.assign_email(email, by=alice)
    url = live_server.url
    login(page, url, "bob")

    page.goto(f"{url}/tickets/?status=all")
    expect(page.locator("table.tickets")).not_to_contain_text(ticket.number)
    assert page.goto(f"{url}/tickets/{ticket.number}/").status == 404
    assert page.goto(f"{url}/emails/{email.pk}/").status == 404
    assert page.goto(f"{url}/emails/{email.pk}/body").status == 404
    api = page.request.get(
        f"{url}/api/v1/tickets/{ticket.number}"
    )  # the browser session works for the API too
    assert api.status == 404 and api.json()["field"] == "ticket"
    assert page.request.get(f"{url}/api/v1/emails/{email.pk}").status == 404

    project_services.update_settings(project, {"shared_tickets": True})
    page.goto(f"{url}/tickets/")
    page.click(f"a[href='/tickets/{ticket.number}/']")
    expect(page.locator("h1")).to_contain_text("Alice's case")
    expect(page.locator(".facts .owner")).to_have_text("Alice")
    assert page.request.get(f"{url}/api/v1/tickets/{ticket.number}").status == 200
    assert page.watch.dialogs == [] and page.watch.page_errors == []
