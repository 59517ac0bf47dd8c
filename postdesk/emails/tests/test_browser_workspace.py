"""Acceptance 1 in a real browser: an agent logs in, sees the queue's emails with the Queue column, opens one with the
keyboard (a second agent's list drops it without a reload), makes it a ticket with a type, replies with a template,
sees the thread in one column, and hands the ticket to a colleague. The screenshots of the docs come from here."""

import re
import time
from email import message_from_bytes

import pytest
from playwright.sync_api import expect

from postdesk.testing import screens
from postdesk.testing.browser import login, watch

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def new_page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)
    watch(page)
    return page


def quiet(page) -> None:
    watched = page.watch
    assert watched.dialogs == [] and watched.page_errors == [], (watched.dialogs, watched.page_errors)
    assert watched.outside_requests == [], watched.outside_requests
    assert watched.console_errors == [], watched.console_errors


def test_an_agent_works_an_email_from_the_inbox_to_a_handed_over_ticket(
    page, browser, live_server, alice, bob, project, forwarding, sender_account, smtp_sink
):
    screens.workspace_setup(project)
    email = screens.customer_email(forwarding)
    screens.morning_mail(project)
    url = live_server.url

    # The inbox: the agent's queues only (English and the default queue, not bob's Magyar), with the Queue column.
    login(page, url, "alice")
    assert page.url == f"{url}/inbox/"
    expect(page.locator("table.inbox thead th")).to_have_text(
        ["Queue", "Language", "From", "Subject", "Received"]
    )
    rows = page.locator("#inbox-rows tr[data-href]")
    expect(rows).to_have_count(5)
    row = page.locator(f"#inbox-rows tr[data-id='{email.pk}']")
    expect(row.locator("td.col-queue")).to_have_text("English")
    expect(page.locator("#inbox-rows")).not_to_contain_text("Számla")

    colleague = new_page(browser)
    login(colleague, url, "bob")
    colleague_row = colleague.locator(f"#inbox-rows tr[data-id='{email.pk}']")
    expect(colleague_row).to_have_count(1)

    # Keyboard: j/k move the selection, Enter opens.
    position = [r.get_attribute("data-id") for r in rows.all()].index(str(email.pk))
    for _ in range(position):
        page.keyboard.press("j")
    page.keyboard.press("k")
    page.keyboard.press("j")
    expect(row).to_have_class(re.compile(r"\bselected\b"))
    screens.save(page, "inbox")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{url}/emails/{email.pk}/")
    expect(page.locator(".toolbar .lock")).to_contain_text("Locked by you")
    frame = page.frame_locator(f"#body-{email.pk} iframe")
    expect(frame.locator("body")).to_contain_text("Kettle Pro 2")
    expect(page.locator(f"#body-{email.pk} .images-blocked")).to_contain_text("Remote images are blocked")

    # The colleague's list refreshes by itself (htmx, every 5 s) and the opened email is gone.
    colleague_url = colleague.url
    expect(colleague_row).to_have_count(0, timeout=12000)
    assert colleague.url == colleague_url

    # Email -> ticket, with a type and the subject as the title.
    page.select_option("#assign-new select[name=ticket_type]", label="Complaint")
    expect(page.locator("#assign-new input[name=title]")).to_have_value("Order #48213 has not arrived")
    page.click("#assign-new button[type=submit]")
    page.wait_for_url(f"{url}/tickets/*/")
    number = page.url.rstrip("/").rsplit("/", 1)[1]
    expect(page.locator(".toolbar")).to_contain_text("Complaint")
    expect(page.locator(".messages")).to_contain_text(f"is now ticket {number}")

    # Reply with a template: r focuses the reply; the template shows its CC (Display template CC is on), not its BCC.
    page.keyboard.press("r")
    body = page.locator("textarea[name=body]")
    expect(body).to_be_focused()
    page.select_option("select[name=template]", label="Order update")
    fields = page.locator("#template-fields")
    expect(fields).to_contain_text("logistics@acme.test")
    expect(fields).to_contain_text("Dear Grace Hopper")
    expect(fields).not_to_contain_text("archive@acme.test")
    expect(page.locator("#reply-subject")).to_contain_text(
        f"Your order: Order #48213 has not arrived [{number}]"
    )
    expect(page.locator("select[name=sender_account] option:checked")).to_have_text(
        "Acme Support <support@acme.test>"
    )
    body.fill("Hello Grace,\n\nsorry for the wait: we looked into it this morning.")
    page.locator("#reply").scroll_into_view_if_needed()
    screens.save(page, "reply", locator=page.locator("#reply"))
    page.click("#reply button[type=submit]")
    page.wait_for_url(f"{url}/tickets/{number}/*")
    expect(page.locator(".messages")).to_contain_text("Reply queued to grace@example.com")

    # The thread in one column: the customer's email and the reply, the newest expanded, the others collapsible.
    messages = page.locator(".thread details.message")
    expect(messages).to_have_count(2)
    expect(messages.nth(0)).to_have_class("message in")
    expect(messages.nth(1)).to_have_class("message out")
    assert messages.nth(0).get_attribute("open") is None and messages.nth(1).get_attribute("open") == ""
    expect(messages.nth(1)).to_contain_text("sorry for the wait")
    expect(messages.nth(1)).to_contain_text("> Hello, I ordered a Kettle Pro 2")
    messages.nth(0).locator("summary").click()
    expect(page.frame_locator(f"#body-{email.pk} iframe").locator("body")).to_contain_text("Kettle Pro 2")
    page.evaluate("window.scrollTo(0, 0)")
    screens.save(page, "thread")

    # The reply left through the outbound pipeline, threaded, with the template's hidden BCC applied.
    deadline = time.monotonic() + 10
    while not smtp_sink.messages and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(smtp_sink.messages) == 1
    sent = smtp_sink.messages[0]
    headers = message_from_bytes(sent.data)
    assert headers["In-Reply-To"] == email.message_id and email.message_id in headers["References"]
    assert number in headers["Subject"] and headers["Cc"] == "logistics@acme.test" and headers["Bcc"] is None
    assert set(sent.rcpt_tos) == {"grace@example.com", "logistics@acme.test", "archive@acme.test"}

    # Change pref user: the ticket goes to bob, who sees it in his list as unread.
    page.select_option("select[name=agent]", "bob")
    page.click("form[action$='/transfer'] button")
    page.wait_for_url(f"{url}/tickets/")
    expect(page.locator(".messages")).to_contain_text(f"Ticket {number} handed to Bob")
    colleague.goto(f"{url}/tickets/")
    expect(colleague.locator(f"tr[data-href='/tickets/{number}/']")).to_have_class(re.compile(r"\bunread\b"))
    quiet(page)
    quiet(colleague)
