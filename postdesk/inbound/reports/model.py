"""The parsed form of a delivery report, and the status-code rules shared by every parser.

Permanence follows the class of the enhanced status code (RFC 3463): ``5.x.x`` is permanent, ``4.x.x`` temporary and
``2.x.x`` (a success notification) is not a failure at all, so not permanent either. When only a basic SMTP reply code
is known (RFC 5321), its first digit decides the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

REPORT_TYPES = ("bounce", "complaint", "autoreply")
ACTIONS = ("failed", "delayed", "delivered", "relayed", "expanded")

# An enhanced status code, not part of a longer dotted number (IP address, version, "4.16.55.1").
ENHANCED_STATUS_RE = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d]|\.\d)")
# A basic SMTP reply code for a failure (4yz or 5yz), standing alone as a token.
REPLY_CODE_RE = re.compile(r"(?<![^\s:'\"(<#=\[])([45][0-5]\d)(?=[\s\-:;,]|$)")


@dataclass(frozen=True)
class ReportRecipient:
    address: str | None = None  # lower-cased bare address
    status: str | None = None  # enhanced status 'D.S.N' when known
    action: str | None = None  # failed | delayed | delivered | relayed | expanded (RFC 3464), or None
    permanent: bool | None = None  # True for 5.x.x, False for 4.x.x (and for successes); None when unknown
    diagnostic: str | None = None  # the remote server's diagnostic text, trimmed

    def as_dict(self) -> dict:
        return {
            "address": self.address,
            "status": self.status,
            "action": self.action,
            "permanent": self.permanent,
            "diagnostic": self.diagnostic,
        }


@dataclass(frozen=True)
class Report:
    type: str  # 'bounce' | 'complaint' | 'autoreply'
    recipients: list[ReportRecipient] = field(default_factory=list)
    original_message_id: str | None = None  # '<...>' form
    original_headers: dict[str, str] = field(default_factory=dict)
    feedback_type: str | None = None  # ARF Feedback-Type: abuse, fraud, auth-failure, ...

    def as_dict(self) -> dict:
        return {
            "type": self.type,
            "recipients": [r.as_dict() for r in self.recipients],
            "original_message_id": self.original_message_id,
            "original_headers": dict(self.original_headers),
            "feedback_type": self.feedback_type,
        }


def find_enhanced_status(text: str | None, classes: str = "245") -> str | None:
    """The first enhanced status code in ``text`` (of the given classes), preferring a specific one over a generic
    ``X.0.0`` of the same class."""
    if not text:
        return None
    codes = [".".join(m.groups()) for m in ENHANCED_STATUS_RE.finditer(text[:4000]) if m.group(1) in classes]
    if not codes:
        return None
    for code in codes:
        if code[0] == codes[0][0] and not code.endswith(".0.0"):
            return code
    return codes[0]


def find_reply_code(text: str | None) -> str | None:
    """The first 4yz/5yz SMTP reply code in ``text``."""
    if not text:
        return None
    match = REPLY_CODE_RE.search(text[:4000])
    return match.group(1) if match else None


def normalize_status(value: str | None) -> str | None:
    """'5.1.1 (permanent failure)' -> '5.1.1'; anything without a code -> None."""
    if not value:
        return None
    match = ENHANCED_STATUS_RE.search(value[:200])
    return ".".join(match.groups()) if match else None


def permanence_of(
    status: str | None, reply_code: str | None = None, action: str | None = None
) -> bool | None:
    """Permanent (True) / temporary (False) from the status class, else the reply code, else the action."""
    for code in (status, reply_code):
        if code:
            if code[0] == "5":
                return True
            if code[0] in "24":
                return False
    if action == "failed":
        return True
    if action in ("delayed", "delivered", "relayed", "expanded"):
        return False
    return None


def normalize_action(value: str | None) -> str | None:
    if not value:
        return None
    word = value.strip().split(None, 1)[0].lower().strip(".;,()") if value.strip() else ""
    aliases = {
        "failure": "failed",
        "fail": "failed",
        "delay": "delayed",
        "deliver": "delivered",
        "relay": "relayed",
        "expired": "failed",  # non-standard: the MTA gave up
    }
    word = aliases.get(word, word)
    return word if word in ACTIONS else None


def trim_diagnostic(text: str | None, limit: int = 500) -> str | None:
    if not text:
        return None
    text = " ".join(text.split())
    if not text:
        return None
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
