"""Changes to emails that are not about tickets: delivery events (with their statistics), delivery reports matched to
our outbound emails, suppression of bad addresses."""

from __future__ import annotations

import hashlib
import hmac
import logging

from postdesk.core import clock
from postdesk.core.crypto import derive_key
from postdesk.emails.models import DeliveryEvent, Direction, Email, EventKind

log = logging.getLogger(__name__)
VERP_TAG = "pdb"


def add_event(email: Email, kind: str, detail: dict | None = None, at=None) -> DeliveryEvent:
    """Record a delivery event on an email and count it in the statistics (once per email and kind)."""
    from postdesk.reports.counters import count_event

    event = DeliveryEvent.objects.create(email=email, kind=kind, detail=detail or {}, at=at or clock.now())
    count_event(email, kind)
    return event


def add_events(events: list[tuple[Email, str, dict]], at=None) -> None:
    """add_event for many (email, kind, detail) at once: one insert, one counting pass per kind."""
    from postdesk.core.sqlbulk import db_datetime, db_json, insert
    from postdesk.reports.counters import count_events

    if not events:
        return
    when = db_datetime(at or clock.now())
    insert(DeliveryEvent, ["email_id", "kind", "at", "detail"],
           [(email.pk, kind, when, db_json(detail or {})) for email, kind, detail in events], returning=False)
    by_kind: dict[str, list[Email]] = {}
    for email, kind, _ in events:
        by_kind.setdefault(kind, []).append(email)
    for kind, emails in by_kind.items():
        count_events(kind, emails)


# VERP: each outbound email's return path carries its id and a short signature, as a subaddress of the account's
# address (support+pdb-123-abcdef0123@acme.test), so that a bounce sent to it is matched without guessing.


def _verp_sig(email_id: int) -> str:
    return hmac.digest(derive_key("verp"), str(email_id).encode(), "sha256").hex()[:10]


def verp_address(base_address: str, email_id: int) -> str:
    local, _, domain = base_address.rpartition("@")
    local = local.split("+", 1)[0]
    return f"{local}+{VERP_TAG}-{email_id}-{_verp_sig(email_id)}@{domain}"


def email_id_from_verp(address: str) -> int | None:
    local = (address or "").rpartition("@")[0]
    _, plus, tag = local.partition("+")
    if not plus or not tag.startswith(f"{VERP_TAG}-"):
        return None
    parts = tag.split("-")
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    email_id = int(parts[1])
    return email_id if hmac.compare_digest(parts[2].lower(), _verp_sig(email_id)) else None


def find_reported_email(project, report, rcpt_to: list[str]) -> Email | None:
    """The outbound email a delivery report answers: VERP return path first, then our id header, then Message-ID."""
    outbound = Email.objects.filter(direction=Direction.OUT)
    for address in rcpt_to or []:
        email_id = email_id_from_verp(address)
        if email_id is not None:
            found = outbound.filter(pk=email_id).first()
            if found is not None:
                return found
    header_id = (report.original_headers or {}).get("x-postdesk-id", "").strip()
    if header_id.isdigit():
        found = outbound.filter(pk=int(header_id), project=project).first()
        if found is not None:
            return found
    if report.original_message_id:
        return outbound.filter(message_id=report.original_message_id).order_by("-id").first()
    return None


def record_report(report_email: Email, report, rcpt_to: list[str]) -> Email | None:
    """A bounce, complaint or auto-reply arrived: an event on the outbound email it answers (if we find it), and
    hard bounces and complaints go on the suppression list for mass email."""
    target = find_reported_email(report_email.project, report, rcpt_to)
    if target is None:
        log.info("unmatched %s report in email %s", report.type, report_email.pk)
        return None
    Email.objects.filter(pk=report_email.pk).update(reply_to_email=target)
    detail = {"report_email": report_email.pk, "recipients": report.as_dict().get("recipients", [])}
    if report.type == "complaint":
        add_event(target, EventKind.SPAM, detail)
        suppress_recipients(target, "complained")
    elif report.type == "autoreply":
        add_event(target, EventKind.AUTOREPLY, detail)
    else:
        actions = {r.action for r in report.recipients}
        failed = [r for r in report.recipients if r.action == "failed" or r.permanent]
        if failed:
            add_event(target, EventKind.BOUNCED, detail)
            if any(r.permanent for r in failed):
                suppress_recipients(
                    target, "bounced", [r.address for r in failed if r.permanent and r.address]
                )
        elif actions & {"delayed"}:
            add_event(target, EventKind.DEFERRED, detail)
        elif actions & {"delivered", "relayed", "expanded"}:
            add_event(target, EventKind.DELIVERED, detail)
        else:
            add_event(target, EventKind.BOUNCED, detail)
    return target


def address_hash(address: str) -> str:
    return hashlib.sha256((address or "").strip().lower().encode()).hexdigest()


def suppress_recipients(email: Email, reason: str, addresses: list[str] | None = None) -> None:
    from postdesk.campaigns.models import Suppression

    for address in addresses if addresses is not None else list(email.to or []):
        Suppression.objects.get_or_create(
            project=email.project, address_hash=address_hash(address), defaults={"reason": reason}
        )
