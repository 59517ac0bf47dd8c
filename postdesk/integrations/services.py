"""The only place that changes webhook endpoints."""

from __future__ import annotations

from postdesk.core.errors import Invalid
from postdesk.core.services import audit
from postdesk.integrations.models import WebhookEndpoint
from postdesk.integrations.ssrf import check_webhook_url

EVENTS = ("email", "ticket")


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
    check_webhook_url(url, f"{field}.url")
    unknown = [e for e in events if e not in EVENTS]
    if unknown or not events:
        raise Invalid(f"events must be some of {', '.join(EVENTS)}", field=f"{field}.events")
    if len(secret or "") < 16:
        raise Invalid("the signing secret must be at least 16 characters", field=f"{field}.secret")
    endpoint = WebhookEndpoint.objects.filter(project=project, url=url).first()
    if endpoint is None:
        endpoint = WebhookEndpoint.objects.create(
            project=project, url=url, events=sorted(events), secret=secret, enabled=enabled
        )
        audit(
            "webhook.create",
            actor=by,
            project=project,
            obj=endpoint,
            after={"url": url, "events": sorted(events)},
        )
        return [f"+ webhook {url} ({', '.join(sorted(events))}) in project {project.key}"]
    changed = []
    if sorted(endpoint.events) != sorted(events):
        endpoint.events = sorted(events)
        changed.append("events")
    if endpoint.secret != secret:
        endpoint.secret = secret
        changed.append("secret")
    if endpoint.enabled != enabled:
        endpoint.enabled = enabled
        if enabled:
            endpoint.disabled_at, endpoint.disabled_reason, endpoint.consecutive_failures = None, "", 0
        changed.append("enabled")
    if not changed:
        return []
    endpoint.save()
    audit("webhook.update", actor=by, project=project, obj=endpoint, after={"changed": changed})
    return [f"~ webhook {url}: {', '.join(changed)}"]
