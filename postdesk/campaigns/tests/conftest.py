import dataclasses

import pytest
from django.conf import settings

from postdesk.testing.dnsserver import DnsServer


@pytest.fixture(autouse=True)
def https_public_url(monkeypatch):
    """Customers reach tracking links over https (RFC 8058 one-click unsubscribe needs it)."""
    monkeypatch.setattr(settings, "CONFIG", dataclasses.replace(settings.CONFIG, public_url="https://desk.acme.test"))


@pytest.fixture
def dns_server(monkeypatch, https_public_url):
    with DnsServer() as server:
        monkeypatch.setattr(settings, "CONFIG", dataclasses.replace(settings.CONFIG,
                                                                    dns_server=f"127.0.0.1:{server.port}"))
        yield server


@pytest.fixture
def mass_account(project, smtp_sink, forwarding):
    from postdesk.mailboxes.services import upsert_account

    account, _ = upsert_account({"name": "news", "protocol": "mass", "address": "news@acme.test",
                                 "domain": "acme.test", "display_name": "Acme News"})
    account.host, account.port, account.security, account.auth = "127.0.0.1", smtp_sink.port, "none", "none"
    account.save()
    return account


def publish(server, account):
    from postdesk.mailboxes import dns

    for record in dns.records(account):
        server.add(record["name"], record["record_type"], record["value"])


@pytest.fixture
def verified(mass_account, dns_server):
    from postdesk.mailboxes import dns

    publish(dns_server, mass_account)
    dns.verify(mass_account)
    mass_account.refresh_from_db()
    assert mass_account.verified_at is not None
    return mass_account


@pytest.fixture
def newsletter(project):
    from postdesk.projects.services import upsert_template

    upsert_template(project, "news", {
        "subject": "Árvíztűrő news for {{ name }}",
        "body": "Hello {{ name }},\n\nOur autumn offers are here. " + "A long line of text. " * 10 + "\n",
        "body_html": '<p>Hello {{ name }},</p><p>See <a href="https://shop.acme.test/autumn?x=1&amp;y=2">the offers'
                     '</a> and <a href="https://acme.test/about">about us</a>.</p>',
        "visible_to_agents": False,
    })
    return project.templates.get(name="news")
