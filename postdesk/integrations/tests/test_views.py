"""The supervisor console's webhook pages: list, add (with the secret shown once), errors inline, the delivery log,
the disabled notice, remove, enable, test; agents get 403."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from postdesk.integrations.models import WebhookDelivery, WebhookEndpoint
from postdesk.projects.tests.conftest import inline_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def console(sam):
    client = Client()
    client.force_login(sam)
    return client


def test_the_webhooks_page_lists_endpoints_and_adds_one_with_a_generated_secret(
    console, project, receiver, allow_private
):
    url = receiver.url("/crm")
    response = console.post(
        reverse("project-webhooks", args=["101"]), {"url": url, "events": ["email", "ticket"]}
    )
    assert response.status_code == 302
    endpoint = WebhookEndpoint.objects.get()
    page = console.get(reverse("project-webhooks", args=["101"])).content.decode()
    assert url in page and endpoint.secret in page and "not shown again" in page
    again = console.get(reverse("project-webhooks", args=["101"])).content.decode()
    assert endpoint.secret not in again and "email, ticket" in again


def test_a_private_target_is_refused_inline(console, project, receiver):
    response = console.post(
        reverse("project-webhooks", args=["101"]), {"url": receiver.url(), "events": ["ticket"]}
    )
    assert response.status_code == 422
    assert "POSTDESK_ALLOW_PRIVATE_WEBHOOKS" in inline_error(response, "id_url_error")
    response = console.post(reverse("project-webhooks", args=["101"]), {"url": "https://93.184.216.34/h"})
    assert response.status_code == 422 and "events" in inline_error(response, "id_events_error")
    assert not WebhookEndpoint.objects.exists()


def test_the_delivery_log_shows_status_latency_and_attempts(console, project, hook):
    WebhookDelivery.objects.create(
        endpoint=hook,
        event="ticket.add",
        payload="{}",
        state="delivered",
        attempts=3,
        last_status=204,
        latency_ms=42,
    )
    WebhookDelivery.objects.create(
        endpoint=hook,
        event="email.sent",
        payload="{}",
        attempts=2,
        last_status=500,
        last_error="HTTP 500: boom",
    )
    page = console.get(reverse("project-webhook", args=["101", hook.pk])).content.decode()
    assert "204" in page and "42 ms" in page and "HTTP 500: boom" in page and "email.sent" in page
    assert "Delivered: 1" in page and "Pending: 1" in page
    only = console.get(
        reverse("project-webhook", args=["101", hook.pk]), {"state": "pending"}
    ).content.decode()
    assert "email.sent" in only and "ticket.add" not in only


def test_a_disabled_endpoint_shows_its_reason_and_can_be_enabled_again(console, project, hook):
    from postdesk.integrations.services import disable_webhook

    disable_webhook(hook, reason="failing for 24 hours; last: HTTP 503")
    listing = console.get(reverse("project-webhooks", args=["101"]))
    assert "failing for 24 hours" in inline_error(listing, f"webhook-{hook.pk}-disabled")
    detail = console.get(reverse("project-webhook", args=["101", hook.pk]))
    assert "HTTP 503" in inline_error(detail, "webhook-disabled")
    response = console.post(reverse("project-webhook-enable", args=["101", hook.pk]))
    assert response.status_code == 302
    hook.refresh_from_db()
    assert hook.enabled and hook.disabled_reason == ""


def test_disable_test_and_remove(console, project, hook, receiver, django_capture_on_commit_callbacks):
    console.post(reverse("project-webhook-disable", args=["101", hook.pk]))
    hook.refresh_from_db()
    assert not hook.enabled
    console.post(reverse("project-webhook-test", args=["101", hook.pk]))
    assert WebhookDelivery.objects.get().event == "ping"
    response = console.post(reverse("project-webhook-delete", args=["101", hook.pk]))
    assert response.status_code == 302 and response.url == reverse("project-webhooks", args=["101"])
    assert not WebhookEndpoint.objects.exists()


def test_agents_get_403_on_the_webhook_pages(project, hook, alice):
    client = Client()
    client.force_login(alice)
    assert client.get(reverse("project-webhooks", args=["101"])).status_code == 403
    assert client.get(reverse("project-webhook", args=["101", hook.pk])).status_code == 403
    assert client.post(reverse("project-webhook-delete", args=["101", hook.pk])).status_code == 403
    assert WebhookEndpoint.objects.exists()


def test_only_endpoints_disabled_for_failure_make_a_notice(console, project, hook, other_project, receiver):
    from postdesk.integrations import services

    services.update_webhook(hook, enabled=False)
    assert list(services.disabled_for_failure()) == []
    assert (
        f"webhook-{hook.pk}-disabled"
        not in console.get(reverse("project-webhooks", args=["101"])).content.decode()
    )
    services.enable_webhook(hook)
    services.disable_webhook(hook, reason="failing for 24 hours")
    assert list(services.disabled_for_failure()) == [hook] == list(services.disabled_for_failure(project))
    assert list(services.disabled_for_failure(other_project)) == []
