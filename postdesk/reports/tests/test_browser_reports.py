"""Acceptance 3 and 5 in a real browser: the monitoring page shows an agent's state change within 2 seconds without
reloading; and the screenshots of the email log, the statistics charts and the monitoring page (docs/screenshots/,
written with POSTDESK_SCREENSHOTS=1)."""

import datetime as dt
import os
import tempfile
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from postdesk.accounts.models import AgentState
from postdesk.accounts.services import set_state
from postdesk.testing import screens
from postdesk.testing.browser import login, watch
from postdesk.testing.factories import inbound_email

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
MONITORING = "/supervisor/reports/monitoring/?project=101"


def quiet(page) -> None:
    watched = page.watch
    assert watched.dialogs == [] and watched.page_errors == [], (watched.dialogs, watched.page_errors)
    assert watched.outside_requests == [] and watched.console_errors == [], watched


def shown_within_two_seconds(page, selector: str) -> float:
    started = time.monotonic()
    page.wait_for_selector(selector, timeout=2000)
    return time.monotonic() - started


def test_the_monitoring_page_shows_an_agents_state_change_within_two_seconds(
    page, browser, live_server, sam, alice, bob, project
):
    url = live_server.url
    login(page, url, "sam")
    page.goto(url + MONITORING)
    expect(page.locator("#user-alice")).to_have_attribute("data-state", "offline")
    expect(page.locator("#users-in-email-status")).to_have_text("0")
    page.evaluate("window.notReloaded = true")

    # the service call every Email status goes through
    set_state(alice, AgentState.EMAIL)
    shown_within_two_seconds(page, "#user-alice[data-state='email'] .badge.state-email")
    expect(page.locator("#user-alice .badge")).to_have_text("Email")
    expect(page.locator("#users-in-email-status")).to_have_text("1", timeout=2000)

    # an agent opening an email in the workspace (the real path: opening locks it and sets Email status)
    email = inbound_email(project, subject="Where is my parcel?", queue=project.queues.get(name="Magyar"))
    colleague = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    watch(colleague)
    login(colleague, url, "bob")
    colleague.goto(f"{url}/emails/{email.pk}/")
    shown_within_two_seconds(page, "#user-bob[data-state='email']")
    expect(page.locator("#users-in-email-status")).to_have_text("2", timeout=2000)

    set_state(alice, AgentState.BREAK)
    shown_within_two_seconds(page, "#user-alice[data-state='break'] .badge.state-break")
    expect(page.locator("#users-in-email-status")).to_have_text("1", timeout=2000)
    assert page.evaluate("window.notReloaded") is True  # swapped in place, never reloaded
    quiet(page)
    colleague.context.close()


def save_full_page(page, name: str) -> Path:
    """Like testing.screens.save, of the whole page."""
    if os.environ.get("POSTDESK_SCREENSHOTS") == "1":
        screens.DOCS.mkdir(parents=True, exist_ok=True)
        path = screens.DOCS / f"{name}.png"
    else:
        path = Path(tempfile.mkdtemp(prefix="postdesk-screens-")) / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_screenshots_of_the_email_log_the_statistics_and_monitoring(page, live_server, sam, project):
    from postdesk.accounts.models import User
    from postdesk.core import clock
    from postdesk.emails.models import Email
    from postdesk.projects import services as project_services
    from postdesk.reports.counters import bump_bulk
    from postdesk.reports.populate import populate

    for label, value in (
        ("Complaint", "COMPLAINT"),
        ("Financial question", "FINANCE"),
        ("Technical", "TECH"),
    ):
        project_services.upsert_ticket_type(project, label, value)
    populate(2000, project_key="101", out=lambda *_: None)
    agents = list(User.objects.filter(username__startswith="agent").order_by("username"))
    today = clock.today()
    for i, agent in enumerate(agents[:12]):  # disposition and mass email too, so that every kind shows
        for days in range(today.day):
            day = today - dt.timedelta(days=days)
            sent = 1 + (i + days) % 4 if day.weekday() < 5 else (i + days) % 2  # quieter at weekends
            bump_bulk(project.pk, agent.pk, day, "disposition",
                      {"sent": sent, "delivered": max(0, sent - int(days % 5 == 0)), "dropped": int(days % 5 == 0),
                       "opened": sent // 2, "link_clicks": int((i + days) % 3 == 0)})  # fmt: skip
            if i % 4 == 0 and day.weekday() == 1:  # a campaign on Tuesdays
                bump_bulk(project.pk, agent.pk, day, "mass",
                          {"sent": 40 + 10 * (i % 3), "delivered": 38, "opened": 15, "link_clicks": 6, "bounced": 2,
                           "marked_as_spam": 1, "unsubscribed": 1})  # fmt: skip
    recent = Email.objects.filter(direction="in", ticket__isnull=True).order_by("-date")[:4]
    for agent, email in zip(agents, recent, strict=False):
        Email.objects.filter(pk=email.pk).update(
            locked_by=agent, locked_at=clock.now() - dt.timedelta(minutes=3)
        )
    states = [("email", 3), ("email", 11), ("email", 1), ("available", 25), ("available", 7), ("break", 14)]
    for agent, (state, minutes) in zip(agents, states, strict=False):
        with clock.frozen(clock.now() - dt.timedelta(minutes=minutes)):
            set_state(agent, state, project=project)
    url = live_server.url
    login(page, url, "sam")

    page.goto(f"{url}/supervisor/reports/emails/?project=101&include_ticketed=on")
    expect(page.locator("table.email-log tbody tr[data-href]")).to_have_count(50)
    expect(page.locator("a[rel=next]")).to_be_visible()
    save_full_page(page, "email-log")

    page.goto(f"{url}/supervisor/reports/statistics/?project=101")
    expect(page.locator("svg.chart")).to_have_count(4)
    save_full_page(page, "statistics")

    page.goto(url + MONITORING)
    expect(page.locator("#users-in-email-status")).to_have_text("3")
    save_full_page(page, "monitoring")
    quiet(page)
