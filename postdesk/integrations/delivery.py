"""Delivering webhooks, in the worker.

A run holds one endpoint (a lease on the row, so two workers never deliver to the same endpoint at once) and POSTs
its due deliveries one at a time in the order they were written; a delivery waits while an earlier one with the same
ordering key (``ticket:<id>``) is still pending, so each ticket's events arrive in order. A run stops at the first
failure (the endpoint is probably down: no point in hammering it) or after a time budget.

Each attempt: the target's address is resolved and checked again (DNS can change; private and loopback addresses
are refused unless POSTDESK_ALLOW_PRIVATE_WEBHOOKS=1) and the connection goes to exactly that address; redirects are
not followed. The body is signed: ``X-Postdesk-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">``
with the endpoint's secret. 2xx within the timeout = delivered; anything else is retried with exponential backoff
(10 s, 30 s, 1 min, 2 min, 5 min, 10 min, 20 min, 40 min, then hourly) until 24 hours after the event, then the
delivery is failed. An endpoint that has failed every attempt for 24 hours (and at least 20 in a row) is disabled,
with the reason, an audit event and a notice on its page; its pending deliveries wait for it to be enabled again.
Every attempt is recorded on the delivery (attempts, last status, latency, error)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.client
import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q

from postdesk.core import clock
from postdesk.integrations.models import WebhookDelivery, WebhookEndpoint
from postdesk.integrations.ssrf import is_public_address

log = logging.getLogger(__name__)

USER_AGENT = "postdesk-webhooks/1"
TIMEOUT_SECONDS = 10  # connecting, and each wait for data
TOTAL_SECONDS = 30  # a whole attempt, however slowly the receiver drips its answer
BACKOFF_SECONDS = (10, 30, 60, 120, 300, 600, 1200, 2400, 3600)  # then hourly
GIVE_UP_AFTER = dt.timedelta(hours=24)
EXPIRY_GRACE = dt.timedelta(
    minutes=15
)  # a final attempt scheduled at the deadline still happens if a bit late
DISABLE_AFTER = dt.timedelta(hours=24)  # failing continuously this long ...
DISABLE_MIN_FAILURES = 20  # ... with at least this many failed attempts in a row
LEASE = dt.timedelta(minutes=5)
RUN_SECONDS = 60  # a run's budget; the rest is picked up by the next run
MAX_ERROR_CHARS = 500
RESPONSE_PEEK_BYTES = 2048


@dataclass
class Outcome:
    status: int | None  # HTTP status, None when no response
    error: str  # empty when delivered
    latency_ms: int

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def backoff(attempts: int) -> dt.timedelta:
    """The wait after the n-th failed attempt (n >= 1)."""
    return dt.timedelta(seconds=BACKOFF_SECONDS[min(attempts, len(BACKOFF_SECONDS)) - 1])


# HTTP ---------------------------------------------------------------------------------------------------------------


class Refused(Exception):
    """The target may not be reached (SSRF rules) or cannot be resolved."""


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the address that was checked, not to whatever the name resolves to a moment later."""

    def __init__(self, host, port, *, address, timeout):
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self):
        self.sock = socket.create_connection((self.address or self.host, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host, port, *, address, timeout, context):
        super().__init__(host, port, timeout=timeout, context=context)
        self.address = address

    def connect(self):
        sock = socket.create_connection((self.address or self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


_tls_context: ssl.SSLContext | None = None


def _context() -> ssl.SSLContext:
    global _tls_context
    if _tls_context is None:
        _tls_context = ssl.create_default_context()
    return _tls_context


def resolve_checked(host: str, port: int) -> str | None:
    """The address to connect to: every address of the name must be public (unless private targets are allowed,
    then None: connect by name)."""
    if settings.CONFIG.allow_private_webhooks:
        return None
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        raise Refused(f"{host} is a private name (POSTDESK_ALLOW_PRIVATE_WEBHOOKS is off)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Refused(f"cannot resolve {host}: {exc}")
    addresses = [info[4][0] for info in infos]
    for ip in addresses:
        if not is_public_address(ip):
            raise Refused(
                f"{host} resolves to the non-public address {ip} (POSTDESK_ALLOW_PRIVATE_WEBHOOKS is off)"
            )
    if not addresses:
        raise Refused(f"cannot resolve {host}")
    return addresses[0]


def post(url: str, body: bytes, headers: dict) -> Outcome:
    """POST once; never raises. No redirects are followed (a 3xx is a failure)."""
    started = time.monotonic()

    def done(status, error):
        return Outcome(status, error[:MAX_ERROR_CHARS], int((time.monotonic() - started) * 1000))

    parts = urlsplit(url)
    host = parts.hostname or ""
    https = parts.scheme == "https"
    try:
        port = parts.port or (443 if https else 80)
    except ValueError:
        return done(None, "invalid port in the URL")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        address = resolve_checked(host, port)
    except Refused as exc:
        return done(None, f"refused: {exc}")
    if https:
        conn = _PinnedHTTPSConnection(
            host, port, address=address, timeout=TIMEOUT_SECONDS, context=_context()
        )
    else:
        conn = _PinnedHTTPConnection(host, port, address=address, timeout=TIMEOUT_SECONDS)
    fired = threading.Event()  # set by the watchdog itself: its thread may still be alive when the request fails
    watchdog = threading.Timer(TOTAL_SECONDS, _abort, args=(conn, fired))
    watchdog.daemon = True
    watchdog.start()
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        status = response.status
        peek = response.read(RESPONSE_PEEK_BYTES)
    except (OSError, http.client.HTTPException) as exc:
        if fired.is_set():
            return done(None, f"no complete answer within {TOTAL_SECONDS} s")
        return done(None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    finally:
        watchdog.cancel()
        conn.close()
    if 200 <= status < 300:
        return done(status, "")
    if 300 <= status < 400:
        return done(
            status, f"HTTP {status}: redirects are not followed ({response.getheader('Location', '')})"
        )
    text = peek.decode("utf-8", "replace").strip()
    return done(status, f"HTTP {status}" + (f": {text}" if text else ""))


def _abort(conn: http.client.HTTPConnection, fired: threading.Event) -> None:
    fired.set()
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


# Runs ---------------------------------------------------------------------------------------------------------------


def claim(endpoint_id: int) -> bool:
    moment = clock.now()
    return bool(
        WebhookEndpoint.objects.filter(pk=endpoint_id, enabled=True)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=moment))
        .update(lease_until=moment + LEASE)
    )


def release(endpoint_id: int) -> None:
    WebhookEndpoint.objects.filter(pk=endpoint_id).update(lease_until=None)


def next_due(endpoint_id: int) -> WebhookDelivery | None:
    """The endpoint's oldest due delivery that no earlier pending delivery with the same ordering key holds up."""
    earlier = WebhookDelivery.objects.filter(
        endpoint_id=endpoint_id,
        state=WebhookDelivery.State.PENDING,
        ordering_key=OuterRef("ordering_key"),
        id__lt=OuterRef("id"),
    ).exclude(ordering_key="")
    return (
        WebhookDelivery.objects.filter(
            endpoint_id=endpoint_id, state=WebhookDelivery.State.PENDING, next_attempt_at__lte=clock.now()
        )
        .exclude(Exists(earlier))
        .order_by("id")
        .first()
    )


def run(endpoint_id: int, *, budget_seconds: float = RUN_SECONDS) -> int:
    """Deliver the endpoint's due deliveries in order; returns how many were delivered. Safe to run twice (the lease
    makes a second run return at once)."""
    if not claim(endpoint_id):
        return 0
    delivered, more = 0, False
    started = time.monotonic()
    try:
        endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
        while endpoint is not None and endpoint.enabled:
            delivery = next_due(endpoint_id)
            if delivery is None:
                break
            if clock.now() > delivery.created_at + GIVE_UP_AFTER + EXPIRY_GRACE:
                _expire(delivery)
                continue
            if not attempt(endpoint, delivery):
                break
            delivered += 1
            if time.monotonic() - started > budget_seconds:
                more = True
                break
    finally:
        release(endpoint_id)
    if more:
        from postdesk.integrations.tasks import deliver_endpoint

        deliver_endpoint(endpoint_id)
    return delivered


def _expire(delivery: WebhookDelivery) -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk, state=WebhookDelivery.State.PENDING).update(
        state=WebhookDelivery.State.FAILED,
        last_error=(delivery.last_error + "; " if delivery.last_error else "") + "gave up: 24 hours passed",
    )


def attempt(endpoint: WebhookEndpoint, delivery: WebhookDelivery) -> bool:
    """One POST of one delivery, recorded. True when delivered."""
    body = delivery.payload.encode()
    secret = endpoint.secret  # empty when it cannot be decrypted (the installation's key changed)
    if not secret:
        outcome = Outcome(None, "the signing secret cannot be read (was POSTDESK_SECRET_KEY changed?)", 0)
    else:
        timestamp = int(clock.now().timestamp())
        outcome = post(
            endpoint.url,
            body,
            {
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": USER_AGENT,
                "X-Postdesk-Event": delivery.event,
                "X-Postdesk-Delivery": str(delivery.pk),
                "X-Postdesk-Signature": signature(secret, timestamp, body),
            },
        )
    if outcome.ok:
        _succeeded(endpoint, delivery, outcome)
        return True
    _failed(endpoint, delivery, outcome)
    return False


def _succeeded(endpoint: WebhookEndpoint, delivery: WebhookDelivery, outcome: Outcome) -> None:
    moment = clock.now()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        state=WebhookDelivery.State.DELIVERED,
        attempts=F("attempts") + 1,
        last_status=outcome.status,
        last_error="",
        latency_ms=outcome.latency_ms,
        delivered_at=moment,
    )
    stale = endpoint.last_success_at is None or moment - endpoint.last_success_at > dt.timedelta(minutes=1)
    if (
        endpoint.consecutive_failures or endpoint.failing_since or stale
    ):  # one write per minute at most when healthy
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            consecutive_failures=0, failing_since=None, last_success_at=moment
        )
        endpoint.consecutive_failures, endpoint.failing_since, endpoint.last_success_at = 0, None, moment


def _failed(endpoint: WebhookEndpoint, delivery: WebhookDelivery, outcome: Outcome) -> None:
    moment = clock.now()
    attempts = delivery.attempts + 1
    deadline = delivery.created_at + GIVE_UP_AFTER
    fields = {
        "attempts": attempts,
        "last_status": outcome.status,
        "last_error": outcome.error,
        "latency_ms": outcome.latency_ms,
    }
    if moment >= deadline:
        fields["state"] = WebhookDelivery.State.FAILED
    else:
        fields["next_attempt_at"] = min(moment + backoff(attempts), deadline)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
    endpoint.consecutive_failures += 1
    endpoint.failing_since = endpoint.failing_since or moment
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        consecutive_failures=F("consecutive_failures") + 1, failing_since=endpoint.failing_since
    )
    log.info("webhook %s delivery %s failed: %s", endpoint.pk, delivery.pk, outcome.error)
    if (
        endpoint.consecutive_failures >= DISABLE_MIN_FAILURES
        and moment - endpoint.failing_since >= DISABLE_AFTER
    ):
        from postdesk.integrations.services import disable_webhook

        reason = (
            f"disabled after failing for {_hours(moment - endpoint.failing_since)} "
            f"({endpoint.consecutive_failures} failed attempts in a row); last: {outcome.error}"
        )[:1000]
        with transaction.atomic():
            disable_webhook(endpoint, reason=reason)
        log.warning("webhook %s (%s) disabled: %s", endpoint.pk, endpoint.url, reason)


def _hours(delta: dt.timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.0f} hours" if hours >= 2 else f"{delta.total_seconds() / 60:.0f} minutes"


def due_endpoint_ids() -> list[int]:
    """Enabled endpoints with a delivery whose time has come."""
    return sorted(
        set(
            WebhookDelivery.objects.filter(
                state=WebhookDelivery.State.PENDING,
                next_attempt_at__lte=clock.now(),
                endpoint__enabled=True,
            ).values_list("endpoint_id", flat=True)
        )
    )


KEEP_LOG = dt.timedelta(days=30)


def prune(keep: dt.timedelta = KEEP_LOG) -> int:
    """Forget finished deliveries older than ``keep`` (the log shows the last 30 days)."""
    deleted, _ = (
        WebhookDelivery.objects.filter(created_at__lt=clock.now() - keep)
        .exclude(state=WebhookDelivery.State.PENDING)
        .delete()
    )
    return deleted
