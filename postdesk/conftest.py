"""Shared fixtures: one small cast (Alice and Bob are agents in project 101, Charlie is an agent of project 202 only,
Sam supervises), the project with its queues and accounts, a real SMTP sink, API clients with tokens."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from django.test import Client

from postdesk.core import clock


def _transactional(request) -> bool:
    marker = request.node.get_closest_marker("django_db")
    if marker is not None and marker.kwargs.get("transaction"):
        return True
    return bool({"transactional_db", "live_server"} & set(request.fixturenames))


@pytest.fixture(autouse=True)
def _search_indexes_emptied_after_flush(request, django_db_blocker):
    """A transactional test ends with a flush of the model tables; the full-text tables are not models: empty them
    too, or a later test finds ids of emails that no longer exist (or that reuse the id)."""
    yield
    if _transactional(request):
        from postdesk.emails import search

        with django_db_blocker.unblock():
            search.clear()


@pytest.fixture(autouse=True)
def _clock_runs():
    from postdesk.emails.api import project_key
    from postdesk.inbound import spool
    from postdesk.outbound import journal

    clock.set_now(None)
    journal.reset()
    project_key.__dict__.pop("cache", None)  # ids are reused after a test's rollback
    if spool.enabled():
        spool.reset()
    yield
    clock.set_now(None)


@pytest.fixture
def frozen_clock():
    moment = dt.datetime(2026, 11, 26, 9, 30, tzinfo=dt.UTC)
    clock.set_now(moment)
    return clock


@pytest.fixture
def users(db):
    from postdesk.accounts.models import User

    def make(username, role):
        user = User.objects.create(username=username, role=role, first_name=username.capitalize())
        user.set_password(f"{username}-password")
        user.save()
        return user

    return {
        "alice": make("alice", "agent"),
        "bob": make("bob", "agent"),
        "charlie": make("charlie", "agent"),
        "sam": make("sam", "supervisor"),
    }


@pytest.fixture
def alice(users):
    return users["alice"]


@pytest.fixture
def bob(users):
    return users["bob"]


@pytest.fixture
def charlie(users):
    return users["charlie"]


@pytest.fixture
def sam(users):
    return users["sam"]


@pytest.fixture
def project(users):
    from postdesk.projects import services

    project = services.create_project(key="101", name="Acme Care")
    services.update_settings(project, {"language_detection": True, "email_queue": True})
    english = services.create_queue(project, name="English", language="en")
    magyar = services.create_queue(project, name="Magyar", language="hu")
    services.set_skill(project, users["alice"], project.default_queue, 5)
    services.set_skill(project, users["alice"], english, 5)
    services.set_skill(project, users["bob"], project.default_queue, 3)
    services.set_skill(project, users["bob"], magyar, 5)
    services.set_skill(project, users["bob"], english, 2)
    return project


@pytest.fixture
def other_project(users):
    from postdesk.projects import services

    project = services.create_project(key="202", name="Beta Sales")
    services.set_skill(project, users["charlie"], project.default_queue, 5)
    return project


@pytest.fixture
def forwarding(project):
    from postdesk.mailboxes.services import upsert_account

    account, _ = upsert_account(
        {"name": "support-in", "protocol": "forwarding", "address": "support@acme.test"}, project=project
    )
    return account


@pytest.fixture
def smtp_sink():
    from postdesk.testing.smtpsink import SmtpSink

    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def sender_account(project, smtp_sink):
    from postdesk.mailboxes.services import upsert_account
    from postdesk.projects.services import set_sender_accounts

    account, _ = upsert_account(
        {
            "name": "support-out",
            "protocol": "smtp",
            "address": "support@acme.test",
            "display_name": "Acme Support",
            "host": "127.0.0.1",
            "port": smtp_sink.port,
            "security": "none",
            "auth": "none",
            "is_default": True,
        }
    )
    set_sender_accounts(project, [account])
    return account


class ApiClient:
    """A test client that sends a bearer token and JSON."""

    def __init__(self, user):
        from postdesk.accounts.services import create_token

        self.user = user
        self.token = create_token(user) if user is not None else None
        self.client = Client()

    def _headers(self):
        return {"HTTP_AUTHORIZATION": f"Bearer {self.token}"} if self.token else {}

    def get(self, path, **params):
        return self.client.get(path, params, **self._headers())

    def post(self, path, data=None, content_type="application/json"):
        import json

        body = data if isinstance(data, (bytes, str)) else json.dumps(data if data is not None else {})
        return self.client.post(path, body, content_type=content_type, **self._headers())

    def patch(self, path, data=None):
        import json

        return self.client.patch(path, json.dumps(data if data is not None else {}), content_type="application/json",
                                 **self._headers())

    def put(self, path, data=None):
        import json

        return self.client.put(path, json.dumps(data if data is not None else {}), content_type="application/json",
                               **self._headers())

    def delete(self, path):
        return self.client.delete(path, **self._headers())


@pytest.fixture
def api():
    return ApiClient


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    from postdesk.testing.browser import ARGS, require_browser

    path = require_browser()
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    # Playwright's sync API keeps an event loop in this thread; the test's own database calls are still synchronous.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=path, headless=True, args=ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    """A fresh browser context and page; `page.watch` holds dialogs, console errors and blocked outside requests."""
    from postdesk.testing.browser import watch

    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)
    watch(page)
    yield page
    context.close()
