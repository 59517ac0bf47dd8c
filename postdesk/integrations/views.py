"""The supervisor console's webhook pages: a project's endpoints (add, remove, enable again, test) and each endpoint's
delivery log (status code, latency, attempts). Writes call integrations.services in one transaction."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from postdesk.accounts.access import supervisor_required
from postdesk.core.errors import DomainError
from postdesk.integrations import services
from postdesk.integrations.forms import WebhookForm
from postdesk.integrations.models import WebhookDelivery, WebhookEndpoint
from postdesk.projects.models import Project

SECRET_SESSION_KEY = "integrations.new_webhook_secret"
LOG_PAGE = 50


def _project(key: str) -> Project:
    project = Project.objects.filter(key=key).first()
    if project is None:
        raise Http404("no such project")
    return project


def _endpoint(project: Project, webhook_id: int) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(project=project, pk=webhook_id).first()
    if endpoint is None:
        raise Http404("no such webhook")
    return endpoint


def _list_page(request, project, form=None, status=200):
    endpoints = WebhookEndpoint.objects.filter(project=project).annotate(
        pending=Count("deliveries", filter=Q(deliveries__state=WebhookDelivery.State.PENDING)),
        failed=Count("deliveries", filter=Q(deliveries__state=WebhookDelivery.State.FAILED)),
    )
    new_secret = request.session.pop(SECRET_SESSION_KEY, None)
    return render(
        request,
        "integrations/webhooks.html",
        {
            "project": project,
            "tab": "webhooks",
            "endpoints": endpoints,
            "form": form or WebhookForm(initial={"events": ["email", "ticket"]}),
            "new_secret": new_secret,
        },
        status=status,
    )


@supervisor_required
def project_webhooks(request, key: str):
    """Project › Webhooks: the endpoints with their health, and a form to register one."""
    project = _project(key)
    if request.method != "POST":
        return _list_page(request, project)
    form = WebhookForm(request.POST)
    form.is_valid()
    d = form.cleaned_data
    try:
        with transaction.atomic():
            endpoint, secret = services.create_webhook(
                project,
                url=d.get("url", ""),
                events=d.get("events") or [],
                secret=d.get("secret") or None,
                by=request.user,
            )
    except DomainError as exc:
        form.add_domain_error(exc)
        return _list_page(request, project, form=form, status=exc.status)
    if not d.get("secret"):
        request.session[SECRET_SESSION_KEY] = {"id": endpoint.pk, "url": endpoint.url, "secret": secret}
    messages.success(request, f"Webhook {endpoint.url} added.")
    return redirect("project-webhooks", key=project.key)


@supervisor_required
def project_webhook(request, key: str, webhook_id: int):
    """One endpoint: its state and its delivery log, newest first (filter by state)."""
    project = _project(key)
    endpoint = _endpoint(project, webhook_id)
    state = request.GET.get("state", "")
    log = endpoint.deliveries.defer("payload").order_by("-id")
    if state in WebhookDelivery.State.values:
        log = log.filter(state=state)
    else:
        state = ""
    page = Paginator(log, LOG_PAGE).get_page(request.GET.get("page"))
    counts = dict(endpoint.deliveries.values_list("state").annotate(n=Count("id")))
    return render(
        request,
        "integrations/webhook_detail.html",
        {
            "project": project,
            "tab": "webhooks",
            "endpoint": endpoint,
            "page": page,
            "state": state,
            "states": [
                (value, label, counts.get(value, 0)) for value, label in WebhookDelivery.State.choices
            ],
            "query": f"state={state}" if state else "",
        },
    )


def _action(request, key, webhook_id, do, done: str, *, back_to_list: bool = False):
    project = _project(key)
    endpoint = _endpoint(project, webhook_id)
    try:
        with transaction.atomic():
            do(endpoint)
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, done.format(url=endpoint.url))
    if back_to_list:
        return redirect("project-webhooks", key=project.key)
    return redirect("project-webhook", key=project.key, webhook_id=endpoint.pk)


@supervisor_required
@require_POST
def project_webhook_delete(request, key: str, webhook_id: int):
    return _action(
        request,
        key,
        webhook_id,
        lambda e: services.delete_webhook(e, by=request.user),
        "Webhook {url} removed.",
        back_to_list=True,
    )


@supervisor_required
@require_POST
def project_webhook_enable(request, key: str, webhook_id: int):
    return _action(
        request,
        key,
        webhook_id,
        lambda e: services.enable_webhook(e, by=request.user),
        "Webhook {url} enabled.",
    )


@supervisor_required
@require_POST
def project_webhook_disable(request, key: str, webhook_id: int):
    return _action(
        request,
        key,
        webhook_id,
        lambda e: services.update_webhook(e, enabled=False, by=request.user),
        "Webhook {url} disabled.",
    )


@supervisor_required
@require_POST
def project_webhook_test(request, key: str, webhook_id: int):
    return _action(
        request,
        key,
        webhook_id,
        lambda e: services.send_test(e, by=request.user),
        "A test ping was sent to {url}: its outcome is at the top of the log.",
    )


@supervisor_required
@require_POST
def project_webhook_redeliver(request, key: str, webhook_id: int, delivery_id: int):
    def do(endpoint):
        delivery = endpoint.deliveries.filter(pk=delivery_id).first()
        if delivery is None:
            raise Http404("no such delivery")
        services.redeliver(delivery, by=request.user)

    return _action(request, key, webhook_id, do, f"Delivery {delivery_id} queued again.")
