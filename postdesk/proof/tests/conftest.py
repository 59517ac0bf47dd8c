"""Fixtures of the proof tests: a verified mass-email account with a template (DNS verification itself is tested in
campaigns/tests), logged-in clients of the shared cast."""

from __future__ import annotations

import pytest
from django.test import Client

from postdesk.core import clock


@pytest.fixture
def mass(project, smtp_sink, forwarding):
    from postdesk.mailboxes.services import upsert_account
    from postdesk.projects.services import upsert_template

    account, _ = upsert_account(
        {
            "name": "news",
            "protocol": "mass",
            "address": "news@acme.test",
            "domain": "acme.test",
            "display_name": "Acme News",
        }
    )
    account.host, account.port, account.security, account.auth = "127.0.0.1", smtp_sink.port, "none", "none"
    account.verified_at = clock.now()
    account.save()
    upsert_template(
        project,
        "news",
        {
            "subject": "News for {{ name }}",
            "body": "Hello {{ name }}",
            "body_html": '<p>Hello {{ name }}, see <a href="https://shop.acme.test/offers">our offers</a>.</p>',
            "visible_to_agents": False,
        },
    )
    return account


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def alice_client(alice):
    return logged_in(alice)


@pytest.fixture
def sam_client(sam):
    return logged_in(sam)
