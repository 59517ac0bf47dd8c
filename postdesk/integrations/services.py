"""The only place that changes webhook endpoints: registering (console, API, `postdesk apply`), editing, removing,
enabling again after a failure streak, disabling, and the test ping. Each change writes an audit event; callers hold
the transaction."""

from __future__ import annotations

import secrets as secrets_module

from postdesk.core import clock
from postdesk.core.errors import Conflict, Invalid
from postdesk.core.services import audit
from postdesk.integrations.models import WebhookDelivery, WebhookEndpoint
from postdesk.integrations.ssrf import check_webhook_url

EVENTS = ("email", "ticket")
MIN_SECRET = 16


def new_secret() -> str:
    return "whsec_" + secrets_module.token_urlsafe(32)


def _check(url: str, events: list[str], secret: str, field: str) -> list[str]:
    check_webhook_url(url, f"{field}.url" if field else "url")
    if len(url) > 1000:
        raise Invalid("a webhook URL has at most 1000 characters", field=f"{field}.url" if field else "url")
    events = list(events or [])
    unknown = [e for e in events if e not in EVENTS]
    if unknown or not events:
        raise Invalid(
            f"events must be some of {', '.join(EVENTS)}", field=f"{field}.events" if field else "events"
        )
    if len(secret or "") < MIN_SECRET:
        raise Invalid(
            f"the signing secret must be at least {MIN_SECRET} characters",
            field=f"{field}.secret" if field else "secret",
        )
    return sorted(set(events))


def upsert_webhook(
    project,
    *,
    url: str,
    events: list[str],
    secret: str,
    enabled: bool = True,
    by=None,
    field: str = "webhook",
) -> list[str]:
    """`postdesk apply`: the endpoint with this URL in this project, created or brought to these values."""
    events = _check(url, events, secret, field)
    endpoint = WebhookEndpoint.objects.filter(project=project, url=url).first()
    if endpoint is None:
        endpoint = WebhookEndpoint.objects.create(
            project=project, url=url, events=events, secret=secret, enabled=enabled
        )
        _forget()
        audit("webhook.create", actor=by, project=project, obj=endpoint, after={"url": url, "events": events})
        return [f"+ webhook {url} ({', '.join(events)}) in project {project.key}"]
    changed = []
    if sorted(endpoint.events) != events:
        endpoint.events = events
        changed.append("events")
    if endpoint.secret != secret:
        endpoint.secret = secret
        changed.append("secret")
    if endpoint.enabled != enabled:
        endpoint.enabled = enabled
        if enabled:
            _clear_failures(endpoint)
        changed.append("enabled")
    if not changed:
        return []
    endpoint.save()
    _forget()
    audit("webhook.update", actor=by, project=project, obj=endpoint, after={"changed": changed})
    return [f"~ webhook {url}: {', '.join(changed)}"]


def create_webhook(project, *, url: str, events: list[str], secret: str | None = None, by=None):
    """A new endpoint (console and API). Returns (endpoint, secret): a secret is generated when none is given, and
    shown to the supervisor once."""
    url = (url or "").strip()
    secret = secret or new_secret()
    events = _check(url, events, secret, "")
    if WebhookEndpoint.objects.filter(project=project, url=url).exists():
        raise Conflict("this project already has a webhook with that URL", field="url")
    endpoint = WebhookEndpoint.objects.create(project=project, url=url, events=events, secret=secret)
    _forget()
    audit("webhook.create", actor=by, project=project, obj=endpoint, after={"url": url, "events": events})
    return endpoint, secret


def update_webhook(
    endpoint: WebhookEndpoint,
    *,
    url: str | None = None,
    events: list[str] | None = None,
    secret: str | None = None,
    enabled: bool | None = None,
    by=None,
) -> list[str]:
    """Change some of url, events, secret, enabled; returns the names of what changed."""
    new_url = endpoint.url if url is None else url.strip()
    new_events = _check(
        new_url,
        endpoint.events if events is None else events,
        endpoint.secret if secret is None else secret,
        "",
    )
    changed = []
    if new_url != endpoint.url:
        if (
            WebhookEndpoint.objects.filter(project_id=endpoint.project_id, url=new_url)
            .exclude(pk=endpoint.pk)
            .exists()
        ):
            raise Conflict("this project already has a webhook with that URL", field="url")
        endpoint.url = new_url
        changed.append("url")
    if new_events != sorted(endpoint.events or []):
        endpoint.events = new_events
        changed.append("events")
    if secret is not None and secret != endpoint.secret:
        endpoint.secret = secret
        changed.append("secret")
    if enabled is not None and enabled != endpoint.enabled:
        endpoint.enabled = enabled
        if enabled:
            _clear_failures(endpoint)
        else:
            endpoint.disabled_at, endpoint.disabled_reason = clock.now(), ""  # a reason: disabled for failing
        changed.append("enabled")
    if changed:
        endpoint.save()
        _forget()
        audit("webhook.update", actor=by, project=endpoint.project, obj=endpoint, after={"changed": changed})
        if "enabled" in changed and endpoint.enabled:
            _wake(endpoint)
    return changed


def delete_webhook(endpoint: WebhookEndpoint, by=None) -> None:
    """The endpoint and its delivery log go; pending deliveries are dropped."""
    audit("webhook.delete", actor=by, project=endpoint.project, obj=endpoint, before={"url": endpoint.url})
    endpoint.delete()
    _forget()


def enable_webhook(endpoint: WebhookEndpoint, by=None) -> None:
    """Enable again (after a failure streak or by hand): the failure count starts again and pending deliveries that
    are not yet 24 hours old go out."""
    update_webhook(endpoint, enabled=True, by=by)


def disable_webhook(endpoint: WebhookEndpoint, *, reason: str, by=None) -> None:
    """Stop delivering (called by the delivery run after repeated failure): the reason is shown on the webhooks page
    and written to the audit log; new events are not recorded for it until it is enabled again."""
    moment = clock.now()
    updated = WebhookEndpoint.objects.filter(pk=endpoint.pk, enabled=True).update(
        enabled=False, disabled_at=moment, disabled_reason=reason
    )
    endpoint.enabled, endpoint.disabled_at, endpoint.disabled_reason = False, moment, reason
    _forget()
    if updated:
        audit(
            "webhook.disable",
            actor=by,
            project=endpoint.project,
            obj=endpoint,
            after={"url": endpoint.url, "reason": reason},
        )


def disabled_for_failure(project=None):
    """Endpoints postdesk disabled after repeated failure (the notice supervisors see; those disabled by hand have
    no reason)."""
    qs = WebhookEndpoint.objects.filter(enabled=False).exclude(disabled_reason="").select_related("project")
    return qs.filter(project=project) if project is not None else qs


def send_test(endpoint: WebhookEndpoint, by=None) -> WebhookDelivery:
    """A 'ping' delivery, signed and logged like any other, sent at once (even to a disabled endpoint's log: it is
    delivered when the endpoint is enabled)."""
    from postdesk.integrations import events

    project = endpoint.project
    body = events.dumps(
        {
            "action": "ping",
            "webhookId": endpoint.pk,
            "projectId": project.key,
            "projectName": project.name,
            "time": clock.now().strftime("%Y-%m-%d %H:%M:%S"),
        }
    )
    events.record([endpoint.pk], events.PING, "", body)
    audit("webhook.test", actor=by, project=project, obj=endpoint)
    return WebhookDelivery.objects.filter(endpoint=endpoint).order_by("-id").first()


def redeliver(delivery: WebhookDelivery, by=None) -> None:
    """Send a delivery again (a failed one, or a delivered one the receiver lost), as soon as possible."""
    from postdesk.integrations import events

    moment = clock.now()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        state=WebhookDelivery.State.PENDING, next_attempt_at=moment, created_at=moment
    )
    audit(
        "webhook.redeliver",
        actor=by,
        project=delivery.endpoint.project,
        obj=delivery.endpoint,
        after={"delivery": delivery.pk},
    )
    events.wake([delivery.endpoint_id])


def _forget() -> None:
    from postdesk.integrations import events

    events.forget_endpoints()


def _clear_failures(endpoint: WebhookEndpoint) -> None:
    endpoint.disabled_at, endpoint.disabled_reason = None, ""
    endpoint.consecutive_failures, endpoint.failing_since = 0, None


def _wake(endpoint: WebhookEndpoint) -> None:
    from postdesk.integrations import events

    events.wake([endpoint.pk])
