"""Provider event notifications mailed as JSON (Amazon SES via SNS email subscriptions): Bounce, Complaint and
Delivery events, each naming recipients, status codes and the original message's headers."""

from __future__ import annotations

import json
import re

from .mime import clean_address
from .model import (
    Report,
    ReportRecipient,
    find_enhanced_status,
    find_reply_code,
    normalize_action,
    normalize_status,
    permanence_of,
    trim_diagnostic,
)
from .original import normalize_message_id

MAX_JSON = 256 * 1024
_TYPE_RE = re.compile(r'"(?:notificationType|eventType)"\s*:\s*"(Bounce|Complaint|Delivery)"')


def looks_like_notification(text: str) -> bool:
    head = text.lstrip()[:20]
    return head.startswith("{") and bool(_TYPE_RE.search(text[:MAX_JSON]))


def _load(text: str) -> dict | None:
    start = text.find("{")
    end = text.rfind("}")
    if start < 0 or end <= start:
        return None
    candidate = text[start : end + 1][:MAX_JSON]
    # Mail transport wraps long lines; some gateways mark the break with '!' before the newline.
    for attempt in (
        candidate,
        re.sub(r"!?\r?\n[ \t]?", "", candidate),
        re.sub(r"\r?\n[ \t]*", "", candidate),
    ):
        try:
            data = json.loads(attempt)
        except (ValueError, RecursionError):
            continue
        if isinstance(data, dict) and isinstance(data.get("Message"), str):  # an SNS envelope
            try:
                inner = json.loads(data["Message"])
            except (ValueError, RecursionError):
                inner = None
            if isinstance(inner, dict):
                data = inner
        return data if isinstance(data, dict) else None
    return None


def _original(mail: dict) -> tuple[str | None, dict[str, str]]:
    headers: dict[str, str] = {}
    common = mail.get("commonHeaders") if isinstance(mail.get("commonHeaders"), dict) else {}
    for name in ("from", "to"):
        value = common.get(name)
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value[:20])
        if isinstance(value, str) and value:
            headers[name] = value[:1000]
    if isinstance(common.get("subject"), str):
        headers["subject"] = common["subject"][:1000]
    message_id = (
        normalize_message_id(common.get("messageId")) if isinstance(common.get("messageId"), str) else None
    )
    for item in mail.get("headers") or []:
        if not isinstance(item, dict):
            continue
        name = str(item.get("name", "")).lower()
        value = str(item.get("value", ""))[:1000]
        if name == "message-id" and not message_id:
            message_id = normalize_message_id(value)
        elif name in ("x-postdesk-id", "return-path") and value:
            headers[name] = value
    if isinstance(mail.get("source"), str) and "return-path" not in headers:
        headers["return-path"] = mail["source"][:1000]
    if message_id:
        headers["message-id"] = message_id
    return message_id, headers


def notification_report(text: str) -> Report | None:
    data = _load(text)
    if data is None:
        return _regex_report(text)
    kind = str(data.get("notificationType") or data.get("eventType") or "")
    mail = data.get("mail") if isinstance(data.get("mail"), dict) else {}
    message_id, headers = _original(mail)
    if kind == "Bounce":
        bounce = data.get("bounce") if isinstance(data.get("bounce"), dict) else {}
        bounce_type = str(bounce.get("bounceType", ""))
        recipients = []
        for item in (bounce.get("bouncedRecipients") or [])[:500]:
            if not isinstance(item, dict):
                continue
            diagnostic = str(item.get("diagnosticCode") or "")
            status = normalize_status(str(item.get("status") or "")) or find_enhanced_status(diagnostic)
            permanent = permanence_of(status, find_reply_code(diagnostic))
            if permanent is None:
                permanent = {"Permanent": True, "Transient": False}.get(bounce_type)
            recipients.append(
                ReportRecipient(
                    address=clean_address(str(item.get("emailAddress") or "")),
                    status=status,
                    action=normalize_action(str(item.get("action") or "")) or "failed",
                    permanent=permanent,
                    diagnostic=trim_diagnostic(diagnostic),
                )
            )
        return Report("bounce", recipients, message_id, headers)
    if kind == "Complaint":
        complaint = data.get("complaint") if isinstance(data.get("complaint"), dict) else {}
        addresses = [
            clean_address(str(item.get("emailAddress") or ""))
            for item in (complaint.get("complainedRecipients") or [])[:500]
            if isinstance(item, dict)
        ]
        feedback = str(complaint.get("complaintFeedbackType") or "abuse").lower()
        return Report(
            "complaint", [ReportRecipient(address=a) for a in addresses if a], message_id, headers, feedback
        )
    if kind == "Delivery":
        delivery = data.get("delivery") if isinstance(data.get("delivery"), dict) else {}
        response = str(delivery.get("smtpResponse") or "")
        status = find_enhanced_status(response) or "2.0.0"
        recipients = [
            ReportRecipient(
                address=clean_address(str(a)),
                status=status,
                action="delivered",
                permanent=False,
                diagnostic=trim_diagnostic(response),
            )
            for a in (delivery.get("recipients") or [])[:500]
        ]
        return Report("bounce", recipients, message_id, headers)
    return None


def _regex_report(text: str) -> Report | None:
    """Best effort when the JSON is damaged beyond repair."""
    match = _TYPE_RE.search(text[:MAX_JSON])
    if not match:
        return None
    kind = match.group(1)
    addresses = []
    for found in re.finditer(r'"emailAddress"\s*:\s*"([^"]{1,320})"', text[:MAX_JSON]):
        address = clean_address(found.group(1))
        if address and address not in addresses:
            addresses.append(address)
    if kind == "Complaint":
        return Report("complaint", [ReportRecipient(address=a) for a in addresses], None, {}, "abuse")
    statuses = [
        normalize_status(m.group(1)) for m in re.finditer(r'"status"\s*:\s*"([^"]{1,40})"', text[:MAX_JSON])
    ]
    if kind == "Delivery":
        return Report(
            "bounce",
            [
                ReportRecipient(address=a, status="2.0.0", action="delivered", permanent=False)
                for a in addresses
            ],
        )
    bounce_type = re.search(r'"bounceType"\s*:\s*"(\w+)"', text[:MAX_JSON])
    recipients = []
    for index, address in enumerate(addresses or [None]):
        status = statuses[index] if index < len(statuses) else None
        permanent = permanence_of(status)
        if permanent is None and bounce_type:
            permanent = {"Permanent": True, "Transient": False}.get(bounce_type.group(1))
        recipients.append(
            ReportRecipient(address=address, status=status, action="failed", permanent=permanent)
        )
    return Report("bounce", recipients)
