"""Complaint reports: ARF (RFC 5965, message/feedback-report) and the Hotmail/Outlook.com JMRP variant that only
forwards the original with an ``X-HmXmrOriginalRecipient`` header."""

from __future__ import annotations

import email.message
import re

from .mime import clean_address, header_value
from .model import ReportRecipient

_FIELD_RE = re.compile(r"^([A-Za-z][A-Za-z0-9-]{1,40})[ \t]*:[ \t]*(.*)$")


def parse_fields(text: str) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    last: tuple[str, int] | None = None
    for count, line in enumerate(text.splitlines()):
        if count > 2000:
            break
        line = line[:2000]
        if line[:1] in (" ", "\t") and last is not None and line.strip():
            name, index = last
            fields[name][index] += " " + line.strip()
            continue
        match = _FIELD_RE.match(line.strip())
        if not match:
            last = None
            continue
        name = match.group(1).lower()
        fields.setdefault(name, []).append(match.group(2).strip())
        last = (name, len(fields[name]) - 1)
    return fields


def complaint_from_fields(fields: dict[str, list[str]]) -> tuple[str, list[ReportRecipient]]:
    feedback_type = (fields.get("feedback-type") or ["abuse"])[0].strip().lower().split(";")[
        0
    ].strip() or "abuse"
    addresses: list[str] = []
    for name in ("original-rcpt-to", "removal-recipient"):
        for value in fields.get(name, []):
            address = clean_address(value)
            if address and address not in addresses:
                addresses.append(address)
        if addresses:
            break
    recipients = [ReportRecipient(address=a) for a in addresses]
    return feedback_type, recipients


def jmrp_recipient(attached: email.message.Message) -> str | None:
    """Hotmail's complaint forwards carry the complainer in ``X-HmXmrOriginalRecipient``."""
    value = header_value(attached, "X-HmXmrOriginalRecipient")
    return clean_address(value) if value else None
