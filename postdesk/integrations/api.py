"""Webhooks in the API (supervisors only): a project's endpoints, registering, editing, removing, enabling again, a
test ping, and the delivery log. Every write calls integrations.services inside one transaction, as the console and
`postdesk apply` do. (The vendor-compatible /v2 endpoints are in compat.py.)"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from django.db import transaction
from ninja import Field, Query, Router, Schema, Status
from pydantic import ConfigDict, StrictBool

from postdesk.accounts.access import require_supervisor
from postdesk.core.errors import NotFound
from postdesk.integrations import services
from postdesk.integrations.models import WebhookDelivery, WebhookEndpoint
from postdesk.projects.api import get_project, supervisor_auth

router = Router(tags=["webhooks"], auth=supervisor_auth)


class In(Schema):
    model_config = ConfigDict(extra="forbid")


class WebhookOut(Schema):
    id: int
    url: str
    events: list[str]
    enabled: bool
    disabled_at: dt.datetime | None
    disabled_reason: str
    consecutive_failures: int
    failing_since: dt.datetime | None
    last_success_at: dt.datetime | None
    pending: int
    created_at: dt.datetime


class WebhookCreated(WebhookOut):
    secret: str  # shown once


class WebhookIn(In):
    url: str
    events: list[Literal["email", "ticket"]] = ["email", "ticket"]
    secret: Annotated[str, Field(min_length=16)] | None = None  # generated when left out


class WebhookPatch(In):
    url: str | None = None
    events: list[Literal["email", "ticket"]] | None = None
    secret: Annotated[str, Field(min_length=16)] | None = None
    enabled: StrictBool | None = None


class DeliveryOut(Schema):
    id: int
    event: str
    state: str
    attempts: int
    last_status: int | None
    latency_ms: int | None
    last_error: str
    created_at: dt.datetime
    next_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None
    ordering_key: str


class DeliveryDetail(DeliveryOut):
    payload: str


class DeliveryPage(Schema):
    items: list[DeliveryOut]
    next_before: int | None


class DeliveryQuery(Schema):
    state: Literal["pending", "delivered", "failed"] | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 100
    before: int | None = None  # page on: the next_before of the previous page


def webhook_out(endpoint: WebhookEndpoint, pending: int | None = None) -> dict:
    if pending is None:
        pending = endpoint.deliveries.filter(state=WebhookDelivery.State.PENDING).count()
    return {
        "id": endpoint.pk,
        "url": endpoint.url,
        "events": list(endpoint.events or []),
        "enabled": endpoint.enabled,
        "disabled_at": endpoint.disabled_at,
        "disabled_reason": endpoint.disabled_reason,
        "consecutive_failures": endpoint.consecutive_failures,
        "failing_since": endpoint.failing_since,
        "last_success_at": endpoint.last_success_at,
        "pending": pending,
        "created_at": endpoint.created_at,
    }


def delivery_out(d: WebhookDelivery, *, payload: bool = False) -> dict:
    out = {
        "id": d.pk,
        "event": d.event,
        "state": d.state,
        "attempts": d.attempts,
        "last_status": d.last_status,
        "latency_ms": d.latency_ms,
        "last_error": d.last_error,
        "created_at": d.created_at,
        "next_attempt_at": d.next_attempt_at if d.state == WebhookDelivery.State.PENDING else None,
        "delivered_at": d.delivered_at,
        "ordering_key": d.ordering_key,
    }
    if payload:
        out["payload"] = d.payload
    return out


def get_webhook(project, webhook_id: int) -> WebhookEndpoint:
    endpoint = (
        WebhookEndpoint.objects.filter(project=project, pk=webhook_id).select_related("project").first()
    )
    if endpoint is None:
        raise NotFound(f"no webhook {webhook_id} in project {project.key}", field="id")
    return endpoint


@router.get("/projects/{key}/webhooks", response=list[WebhookOut], summary="A project's webhook endpoints")
def list_webhooks(request, key: str):
    require_supervisor(request.auth)
    project = get_project(key)
    return [webhook_out(e) for e in WebhookEndpoint.objects.filter(project=project)]


@router.post(
    "/projects/{key}/webhooks",
    response={201: WebhookCreated},
    summary="Register an endpoint (its signing secret is in this answer only)",
)
def create_webhook(request, key: str, payload: WebhookIn):
    require_supervisor(request.auth)
    project = get_project(key)
    with transaction.atomic():
        endpoint, secret = services.create_webhook(
            project, url=payload.url, events=list(payload.events), secret=payload.secret, by=request.auth
        )
    return Status(201, {**webhook_out(endpoint, 0), "secret": secret})


@router.get("/projects/{key}/webhooks/{webhook_id}", response=WebhookOut, summary="One webhook endpoint")
def read_webhook(request, key: str, webhook_id: int):
    require_supervisor(request.auth)
    return webhook_out(get_webhook(get_project(key), webhook_id))


@router.patch(
    "/projects/{key}/webhooks/{webhook_id}",
    response=WebhookOut,
    summary="Change an endpoint's URL, events, secret or enabled",
)
def patch_webhook(request, key: str, webhook_id: int, payload: WebhookPatch):
    require_supervisor(request.auth)
    endpoint = get_webhook(get_project(key), webhook_id)
    values = payload.model_dump(exclude_unset=True)
    with transaction.atomic():
        services.update_webhook(endpoint, **values, by=request.auth)
    return webhook_out(endpoint)


@router.delete(
    "/projects/{key}/webhooks/{webhook_id}", response={204: None}, summary="Remove an endpoint and its log"
)
def delete_webhook(request, key: str, webhook_id: int):
    require_supervisor(request.auth)
    endpoint = get_webhook(get_project(key), webhook_id)
    with transaction.atomic():
        services.delete_webhook(endpoint, by=request.auth)
    return Status(204, None)


@router.post(
    "/projects/{key}/webhooks/{webhook_id}/enable",
    response=WebhookOut,
    summary="Enable an endpoint again (after it was disabled for repeated failure)",
)
def enable_webhook(request, key: str, webhook_id: int):
    require_supervisor(request.auth)
    endpoint = get_webhook(get_project(key), webhook_id)
    with transaction.atomic():
        services.enable_webhook(endpoint, by=request.auth)
    return webhook_out(endpoint)


@router.post(
    "/projects/{key}/webhooks/{webhook_id}/test",
    response={202: DeliveryOut},
    summary="Send a signed 'ping' to the endpoint (see its delivery log for the outcome)",
)
def test_webhook(request, key: str, webhook_id: int):
    require_supervisor(request.auth)
    endpoint = get_webhook(get_project(key), webhook_id)
    with transaction.atomic():
        delivery = services.send_test(endpoint, by=request.auth)
    delivery.refresh_from_db()
    return Status(202, delivery_out(delivery))


@router.get(
    "/projects/{key}/webhooks/{webhook_id}/deliveries",
    response=DeliveryPage,
    summary="The delivery log, newest first: status code, latency, attempts",
)
def list_deliveries(request, key: str, webhook_id: int, query: Query[DeliveryQuery]):
    require_supervisor(request.auth)
    endpoint = get_webhook(get_project(key), webhook_id)
    qs = endpoint.deliveries.defer("payload")
    if query.state:
        qs = qs.filter(state=query.state)
    if query.before:
        qs = qs.filter(id__lt=query.before)
    rows = list(qs.order_by("-id")[: query.limit + 1])
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return {"items": [delivery_out(d) for d in rows], "next_before": rows[-1].pk if more and rows else None}


def _delivery(endpoint, delivery_id: int) -> WebhookDelivery:
    delivery = endpoint.deliveries.filter(pk=delivery_id).select_related("endpoint__project").first()
    if delivery is None:
        raise NotFound(f"no delivery {delivery_id} for this webhook", field="delivery_id")
    return delivery


@router.get(
    "/projects/{key}/webhooks/{webhook_id}/deliveries/{delivery_id}",
    response=DeliveryDetail,
    summary="One delivery with the exact body that is (or was) sent",
)
def read_delivery(request, key: str, webhook_id: int, delivery_id: int):
    require_supervisor(request.auth)
    endpoint = get_webhook(get_project(key), webhook_id)
    return delivery_out(_delivery(endpoint, delivery_id), payload=True)


@router.post(
    "/projects/{key}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    response={202: DeliveryOut},
    summary="Send a delivery again (retried for 24 hours from now)",
)
def redeliver(request, key: str, webhook_id: int, delivery_id: int):
    require_supervisor(request.auth)
    endpoint = get_webhook(get_project(key), webhook_id)
    delivery = _delivery(endpoint, delivery_id)
    with transaction.atomic():
        services.redeliver(delivery, by=request.auth)
    delivery.refresh_from_db()
    return Status(202, delivery_out(delivery))
