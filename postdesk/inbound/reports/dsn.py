"""RFC 3464 delivery-status fields, read from a message/delivery-status part or from DSN fields found in text.

The same line-based reader serves both: many MTAs paste the DSN fields into the human-readable part ("Technical
report:"), and broken MIME structure leaves the real DSN part as plain text inside its parent. Per-recipient groups
are separated by blank lines, or start again when a recipient field repeats without one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .mime import clean_address
from .model import (
    ReportRecipient,
    find_enhanced_status,
    find_reply_code,
    normalize_action,
    normalize_status,
    permanence_of,
    trim_diagnostic,
)

MAX_LINES = 4000
MAX_LINE = 2000

PER_MESSAGE_FIELDS = {
    "reporting-mta",
    "dsn-gateway",
    "received-from-mta",
    "arrival-date",
    "original-envelope-id",
    "x-original-message-id",
    "x-postfix-queue-id",
    "x-postfix-sender",
}
PER_RECIPIENT_FIELDS = {
    "original-recipient",
    "final-recipient",
    "action",
    "status",
    "remote-mta",
    "diagnostic-code",
    "last-attempt-date",
    "final-log-id",
    "will-retry-until",
    "x-actual-recipient",
    "x-supplementary-info",
    "x-display-name",
}
# A field that, seen twice in one group without a blank line between, means a new recipient began.
_GROUP_STARTERS = {"original-recipient", "final-recipient", "action", "status"}

_FIELD_RE = re.compile(r"^([A-Za-z][A-Za-z0-9-]{1,40})[ \t]*:[ \t]*(.*)$")


@dataclass
class DsnFields:
    per_message: dict[str, str] = field(default_factory=dict)
    groups: list[dict[str, str]] = field(default_factory=list)


def parse_dsn_text(text: str) -> DsnFields:
    """Read DSN fields out of ``text`` (a delivery-status body, or any text that may contain its fields)."""
    result = DsnFields()
    group: dict[str, str] = {}
    last: tuple[dict[str, str], str] | None = None

    def close() -> None:
        nonlocal group
        if group and _is_recipient_group(group):
            result.groups.append(group)
        group = {}

    for count, line in enumerate(text.splitlines()):
        if count >= MAX_LINES:
            break
        line = line[:MAX_LINE]
        if not line.strip():
            close()
            last = None
            continue
        if line[:1] in (" ", "\t") and last is not None:
            target, name = last
            if len(target[name]) < MAX_LINE:
                target[name] = f"{target[name]} {line.strip()}"
            continue
        match = _FIELD_RE.match(line.strip())
        if not match:
            last = None
            continue
        name, value = match.group(1).lower(), match.group(2).strip()
        if name in PER_RECIPIENT_FIELDS:
            if name in _GROUP_STARTERS and name in group:
                close()
            group[name] = value
            last = (group, name)
        elif name in PER_MESSAGE_FIELDS:
            result.per_message.setdefault(name, value)
            last = (result.per_message, name)
        else:
            last = None
    close()
    return result


def _is_recipient_group(group: dict[str, str]) -> bool:
    if "final-recipient" in group or "original-recipient" in group:
        return True
    return "action" in group and "status" in group


def recipient_from_group(group: dict[str, str]) -> ReportRecipient:
    address = _typed_address(group.get("final-recipient")) or _typed_address(group.get("original-recipient"))
    diagnostic_raw = group.get("diagnostic-code") or group.get("x-supplementary-info", "")
    diagnostic = _strip_type(diagnostic_raw)
    status = normalize_status(group.get("status"))
    detailed = find_enhanced_status(diagnostic)
    if status is None:
        status = detailed
    elif detailed and status.endswith(".0.0") and detailed[0] == status[0]:
        status = detailed  # "Status: 5.0.0" with "550 5.1.1 user unknown" in the diagnostic
    action = normalize_action(group.get("action"))
    reply = find_reply_code(diagnostic)
    permanent = permanence_of(status, reply, action)
    return ReportRecipient(
        address=address,
        status=status,
        action=action,
        permanent=permanent,
        diagnostic=trim_diagnostic(diagnostic),
    )


def _typed_address(value: str | None) -> str | None:
    if not value:
        return None
    return clean_address(_strip_type(value))


def _strip_type(value: str) -> str:
    """'rfc822; a@b' -> 'a@b', 'smtp; 550 ...' -> '550 ...'."""
    head, sep, rest = value.partition(";")
    if sep and re.fullmatch(r"\s*[A-Za-z][A-Za-z0-9.-]{0,20}\s*", head):
        return rest.strip()
    return value.strip()
