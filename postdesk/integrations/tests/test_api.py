"""The webhook API (supervisors): register with a generated or given secret (shown once), list, edit, remove, enable
again, test ping, the delivery log; agents get 403 on every route; private targets are refused."""

from __future__ import annotations

import pytest

from postdesk.core.models import AuditEvent
from postdesk.integrations.models import WebhookDelivery, WebhookEndpoint
from postdesk.integrations.tests.conftest import SECRET

BASE = "/api/v1/projects/101/webhooks"


@pytest.fixture
def supervisor(api, sam):
    return api(sam)


@pytest.mark.django_db
def test_a_supervisor_registers_an_endpoint_and_sees_its_secret_once(
    supervisor, project, receiver, allow_private
):
    response = supervisor.post(BASE, {"url": receiver.url("/crm"), "events": ["ticket"]})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["secret"].startswith("whsec_") and len(body["secret"]) > 30
    assert body["events"] == ["ticket"] and body["enabled"] and body["pending"] == 0
    endpoint = WebhookEndpoint.objects.get(pk=body["id"])
    assert endpoint.secret == body["secret"] and AuditEvent.objects.filter(action="webhook.create").exists()
    listed = supervisor.get(BASE).json()
    assert [w["url"] for w in listed] == [receiver.url("/crm")] and "secret" not in listed[0]
    assert "secret" not in supervisor.get(f"{BASE}/{endpoint.pk}").json()


@pytest.mark.django_db
def test_registering_refuses_private_targets_bad_events_short_secrets_and_duplicates(
    supervisor, project, receiver, monkeypatch
):
    assert supervisor.post(BASE, {"url": receiver.url()}).json()["field"] == "url"
    assert supervisor.post(BASE, {"url": "ftp://crm.example.com/x"}).status_code == 422
    assert supervisor.post(BASE, {"url": "https://user:pw@crm.example.com/x"}).status_code == 422
    assert supervisor.post(BASE, {"url": "https://93.184.216.34/x", "events": ["calls"]}).status_code == 422
    assert supervisor.post(BASE, {"url": "https://93.184.216.34/x", "secret": "short"}).status_code == 422
    assert supervisor.post(BASE, {"url": "https://93.184.216.34/x", "events": []}).status_code == 422
    assert supervisor.post(BASE, {"url": "https://93.184.216.34/x"}).status_code == 201
    assert supervisor.post(BASE, {"url": "https://93.184.216.34/x"}).status_code == 409
    assert (
        supervisor.post("/api/v1/projects/999/webhooks", {"url": "https://93.184.216.34/y"}).status_code
        == 404
    )


@pytest.mark.django_db
def test_an_endpoint_is_edited_and_removed(supervisor, project, hook):
    url = f"{BASE}/{hook.pk}"
    body = supervisor.patch(url, {"events": ["email"], "secret": "another-secret-of-16+"}).json()
    hook.refresh_from_db()
    assert body["events"] == ["email"] and hook.secret == "another-secret-of-16+"
    assert supervisor.patch(url, {"enabled": False}).json()["enabled"] is False
    assert supervisor.patch(url, {"colour": "red"}).status_code == 422
    assert supervisor.delete(url).status_code == 204
    assert not WebhookEndpoint.objects.exists() and supervisor.get(url).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_the_test_ping_and_the_delivery_log(supervisor, project, hook, receiver):
    response = supervisor.post(f"{BASE}/{hook.pk}/test")
    assert response.status_code == 202, response.content
    ping = response.json()
    assert ping["event"] == "ping" and ping["state"] == "delivered" and ping["last_status"] == 200
    [arrival] = receiver.arrivals
    assert arrival.signature_ok and arrival.body["action"] == "ping" and arrival.body["projectId"] == "101"
    receiver.status = 500
    supervisor.post(f"{BASE}/{hook.pk}/test")
    log = supervisor.get(f"{BASE}/{hook.pk}/deliveries").json()
    newest, oldest = log["items"]
    assert (newest["state"], newest["last_status"], newest["attempts"]) == ("pending", 500, 1)
    assert (
        newest["latency_ms"] is not None and newest["next_attempt_at"] and "HTTP 500" in newest["last_error"]
    )
    assert oldest["state"] == "delivered" and oldest["delivered_at"] and oldest["next_attempt_at"] is None
    assert supervisor.get(f"{BASE}/{hook.pk}/deliveries", state="delivered").json()["items"] == [oldest]
    page = supervisor.get(f"{BASE}/{hook.pk}/deliveries", limit=1).json()
    assert page["items"] == [newest] and page["next_before"] == newest["id"]
    detail = supervisor.get(f"{BASE}/{hook.pk}/deliveries/{oldest['id']}").json()
    assert detail["payload"] == arrival.raw.decode()
    receiver.status = 200
    again = supervisor.post(f"{BASE}/{hook.pk}/deliveries/{oldest['id']}/redeliver").json()
    assert again["state"] == "delivered" and again["attempts"] == 2 and len(receiver.accepted) == 2


@pytest.mark.django_db(transaction=True)
def test_a_disabled_endpoint_is_enabled_again_and_its_pending_deliveries_go_out(
    supervisor, project, hook, receiver
):
    from postdesk.integrations.services import disable_webhook, send_test

    disable_webhook(hook, reason="failing for 24 hours")
    send_test(hook)
    assert receiver.arrivals == []
    shown = supervisor.get(f"{BASE}/{hook.pk}").json()
    assert (
        shown["enabled"] is False
        and shown["disabled_reason"] == "failing for 24 hours"
        and shown["pending"] == 1
    )
    body = supervisor.post(f"{BASE}/{hook.pk}/enable").json()
    assert body["enabled"] and body["disabled_reason"] == "" and body["consecutive_failures"] == 0
    assert len(receiver.accepted) == 1 and not WebhookDelivery.objects.filter(state="pending").exists()


@pytest.mark.django_db
def test_agents_get_403_on_every_webhook_route(api, alice, project, hook):
    from postdesk.integrations.api import router

    client = api(alice)
    checked = 0
    for path, path_view in router.path_operations.items():
        for operation in path_view.operations:
            for method in operation.methods:
                url = "/api/v1" + path.replace("{key}", "101").replace("{webhook_id}", str(hook.pk)).replace(
                    "{delivery_id}", "1"
                )
                response = (
                    getattr(client, method.lower())(url)
                    if method in ("GET", "DELETE")
                    else getattr(client, method.lower())(url, {})
                )
                assert response.status_code == 403, (method, url, response.status_code)
                checked += 1
    assert checked >= 10 and WebhookEndpoint.objects.filter(pk=hook.pk, enabled=True).exists()


@pytest.mark.django_db
def test_postdesk_apply_registers_webhooks_idempotently(receiver, allow_private, users):
    import yaml

    from postdesk.projects.config import apply, parse

    config = {
        "projects": [
            {
                "key": "101",
                "name": "Acme Care",
                "webhooks": [{"url": receiver.url("/crm"), "events": ["email", "ticket"], "secret": SECRET}],
            }
        ]
    }
    first = apply(parse(yaml.safe_dump(config)))
    assert any(line.startswith("+ webhook") for line in first)
    assert apply(parse(yaml.safe_dump(config))) == []
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.events == ["email", "ticket"] and endpoint.secret == SECRET
