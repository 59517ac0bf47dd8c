"""Tracking endpoints, public (no login): the open pixel, click redirects and unsubscribe.

Tokens are opaque and signed (outbound.tracking): a click token names only (email, link index) and the target comes
from storage, so these links can never redirect anywhere the email did not link to; a tampered token gets 404.
Unsubscribing needs a POST (RFC 8058 one-click, or the confirmation button); a link scanner's GET changes nothing."""

from __future__ import annotations

import base64

from django.db import transaction
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from postdesk.campaigns.sender import tracking_key
from postdesk.emails.models import Direction, Email, EventKind
from postdesk.outbound import tracking

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _email(token: str, kind: str) -> tuple[Email, int]:
    found = tracking.read_tracking_token(tracking_key(), token, kind)
    if found is None:
        raise Http404("unknown link")
    email = Email.objects.select_related("campaign", "project").filter(pk=found[0], direction=Direction.OUT).first()
    if email is None:
        raise Http404("unknown link")
    return email, found[1]


def _detail(request) -> dict:
    return {"user_agent": request.META.get("HTTP_USER_AGENT", "")[:300]}


@never_cache
def opened(request, token: str):
    from postdesk.emails.services import add_event

    try:
        email, _ = _email(token, tracking.KIND_OPEN)
    except Http404:
        email = None
    if email is not None:
        with transaction.atomic():
            add_event(email, EventKind.OPENED, _detail(request))
    response = HttpResponse(PIXEL, content_type="image/gif")
    response["Cache-Control"] = "no-store"
    return response


@never_cache
def clicked(request, token: str):
    from postdesk.emails.services import add_event

    email, index = _email(token, tracking.KIND_CLICK)
    links = email.campaign.links if email.campaign_id else []
    if index >= len(links) or not tracking.is_safe_target(links[index]):
        raise Http404("unknown link")
    with transaction.atomic():
        add_event(email, EventKind.CLICKED, {**_detail(request), "link": index})
    response = HttpResponseRedirect(links[index])
    response["Referrer-Policy"] = "no-referrer"
    return response


@csrf_exempt  # RFC 8058: the mail client POSTs without our cookies; the signed token is the authorisation
@require_http_methods(["GET", "POST"])
@never_cache
def unsubscribe(request, token: str):
    from postdesk.campaigns.services import unsubscribe as do_unsubscribe

    email, _ = _email(token, tracking.KIND_UNSUBSCRIBE)
    if request.method == "POST":
        with transaction.atomic():
            do_unsubscribe(email, source="one-click" if request.POST.get("List-Unsubscribe") else "page")
        return render(request, "outbound/unsubscribed.html", {"project": email.project})
    return render(request, "outbound/unsubscribe.html", {"project": email.project, "token": token})
