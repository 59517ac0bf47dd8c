"""The supervisor console in a real browser: a supervisor sets up a project from nothing and the agent sees it; a
refused setting is shown inline. Pages are found by their accessible labels, as a keyboard or screen-reader user
would; no page may log a console error (a CSP violation included)."""

import re

import pytest
from playwright.sync_api import expect

from postdesk.projects.models import AgentQueueSkill, Project
from postdesk.testing.browser import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def saved(page):
    expect(page.locator(".messages")).to_contain_text(re.compile("created|saved|added", re.I))


def test_a_supervisor_sets_up_a_project_from_nothing_and_the_agent_sees_it(
    page, live_server, users, smtp_sink
):
    url = live_server.url
    login(page, url, "sam")
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()

    # a project
    page.get_by_label("Project ID").fill("101")
    page.get_by_label("Name", exact=True).fill("Acme Care")
    page.get_by_role("button", name="Create project").click()
    saved(page)

    # Global settings > Email accounts: forwarding in, SMTP out (tested), both for project 101
    page.get_by_role("link", name="Global settings › Email accounts").click()
    page.get_by_role("link", name="New forwarding account").click()
    page.get_by_label("Name", exact=True).fill("support-in")
    page.get_by_label("Email address").fill("support@acme.test")
    page.get_by_label("Project").select_option("101")
    page.get_by_role("button", name="Save").click()
    saved(page)
    expect(page.get_by_text("/api/v1/inbound/support-in")).to_be_visible()
    page.get_by_role("link", name="Back to email accounts").click()
    page.get_by_role("link", name="New SMTP account").click()
    page.get_by_label("Name", exact=True).fill("support-out")
    page.get_by_label("Email address").fill("support@acme.test")
    page.get_by_label("Display name").fill("Acme Support")
    page.get_by_label("Default", exact=True).check()
    page.get_by_label("Mail server").fill("127.0.0.1")
    page.get_by_label("Port").fill(str(smtp_sink.port))
    page.get_by_label("Security protocol").select_option("none")
    page.get_by_label("Authentication method").select_option("none")
    page.get_by_role("button", name="Save").click()
    saved(page)
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#test-result")).to_contain_text("Connection OK.")

    # Queues tab: two language queues
    page.get_by_role("link", name="Projects").click()
    page.get_by_role("link", name="Acme Care").click()
    page.get_by_role("link", name="Queues", exact=True).click()
    for name, language in (("English", "en"), ("Magyar", "hu")):
        page.get_by_label("Name", exact=True).fill(name)
        page.get_by_label("Language").select_option(language)
        page.get_by_role("button", name="Save").click()
        saved(page)

    # Templates: one for agents (with CC and BCC), one automatic response hidden from them
    page.get_by_role("link", name="Templates").click()
    for name, subject, cc, bcc, visible in (
        ("thanks", "Re: {{ subject }}", "team@acme.test", "archive@acme.test", True),
        ("ack", "We received your message", "", "", False),
    ):
        page.get_by_label("Name", exact=True).fill(name)
        page.get_by_label("Subject").fill(subject)
        page.get_by_label("Body", exact=True).fill(f"Hello from {name}")
        page.get_by_label("CC", exact=True).fill(cc)
        page.get_by_label("BCC", exact=True).fill(bcc)
        page.get_by_label("Visible to agents").set_checked(visible)
        page.get_by_role("button", name="Create template").click()
        saved(page)

    # Ticket types (Custom values)
    page.get_by_role("link", name="Ticket types").click()
    page.get_by_label("Label", exact=True).fill("Complaint")
    page.get_by_label("Export value", exact=True).fill("COMPLAINT")
    page.get_by_role("button", name="Add ticket type").click()
    saved(page)

    # General settings: queues by language, the automatic response, the sender account and its default
    page.get_by_role("link", name="General settings").click()
    page.get_by_label("New email list element number").fill("30")
    page.get_by_label("Email language detection").check()
    page.get_by_label("Email queue", exact=True).check()
    page.get_by_label("Automatic response").select_option("ack")
    page.get_by_label("Automatic deletion after (days)").fill("365")
    page.get_by_label("Offer support-out to agents").check()
    page.get_by_label("support-out is the default").check()
    page.get_by_role("button", name="Save").click()
    saved(page)

    # Agents > Queues & Skills: each cell saves as the supervisor tabs through the matrix
    page.get_by_role("link", name="Agents › Queues & Skills").click()
    page.wait_for_load_state()  # htmx binds the cells on DOMContentLoaded
    for agent, queue, level in (("alice", "English", "5"), ("alice", "Magyar", "3"), ("bob", "Magyar", "4")):
        cell = page.get_by_label(f"Skill level of {agent} in {queue}")
        cell.fill(level)
        cell.press("Tab")
        expect(
            page.locator("td", has=page.get_by_label(f"Skill level of {agent} in {queue}"))
        ).to_contain_text("Saved")

    # the audit log has it all, by sam
    page.get_by_role("link", name="Audit log").first.click()
    expect(page.locator("table.audit")).to_contain_text("skill.set")
    expect(page.locator("table.audit")).to_contain_text("project.settings")

    project = Project.objects.get(key="101")
    assert project.email_queue and project.list_size == 30 and project.auto_response_template.name == "ack"
    assert dict(
        AgentQueueSkill.objects.filter(user__username="alice").values_list("queue__name", "level")
    ) == {"English": 5, "Magyar": 3}
    assert project.inbound_accounts.get().name == "support-in"

    # the agent's view reflects it
    page.context.clear_cookies()
    login(page, url, "alice")
    page.goto(f"{url}/my/")
    section = page.locator("#project-101")
    expect(section.get_by_role("heading", name=re.compile("Acme Care"))).to_be_visible()
    queues = section.locator("table.my-queues")
    expect(queues.locator("tr", has_text="English")).to_contain_text("5")
    expect(queues.locator("tr", has_text="Magyar")).to_contain_text("3")
    expect(queues).not_to_contain_text("Default")
    expect(section.get_by_text("thanks", exact=True)).to_be_visible()
    expect(section.get_by_text("ack", exact=True)).to_have_count(0)
    section.get_by_text("thanks", exact=True).click()
    expect(section.locator(".my-template")).to_contain_text("team@acme.test")  # Display template CC: on
    expect(section.locator(".my-template")).not_to_contain_text("archive@acme.test")  # BCC: off
    expect(section.locator(".my-senders")).to_contain_text("Acme Support <support@acme.test> default")

    assert not page.watch.console_errors and not page.watch.page_errors, (
        page.watch.console_errors + page.watch.page_errors
    )


def test_a_refused_setting_is_shown_beside_its_field(page, live_server, project, sam):
    login(page, live_server.url, "sam")
    page.goto(f"{live_server.url}/supervisor/projects/101/")
    page.get_by_label("Email language detection").uncheck()
    page.get_by_label("New email list element number").fill("60")
    page.get_by_role("button", name="Save").click()
    email_queue = page.get_by_label("Email queue", exact=True)
    expect(email_queue).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#id_email_queue_error")).to_have_text(
        "the Email queue setting needs Email language detection to be on"
    )
    expect(page.get_by_role("alert").first).to_contain_text("Nothing was saved")
    project.refresh_from_db()
    assert project.list_size == 50 and project.language_detection

    # a refused matrix cell says why in place, and keeps the level it had
    page.goto(f"{live_server.url}/supervisor/projects/101/skills/")
    cell = page.get_by_label("Skill level of alice in English")
    cell.fill("11")
    cell.press("Tab")
    expect(page.locator("td", has=page.get_by_label("Skill level of alice in English"))).to_contain_text(
        "skill level must be a whole number from 1 to 10"
    )
    assert AgentQueueSkill.objects.get(user__username="alice", queue__name="English").level == 5
    # the refused form answered 422 on purpose, and chromium logs that; anything else would be a fault
    unexpected = [e for e in page.watch.console_errors if "status of 422" not in e]
    assert not unexpected and not page.watch.page_errors
