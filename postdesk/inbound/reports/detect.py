"""Putting the readers together: is this inbound message a delivery report, and what does it say?

Order of questions: provider JSON notification, ARF complaint (and Hotmail JMRP), bounce (RFC 3464 parts, DSN fields
found in text, then the heuristic text reader), automatic reply. Anything else is customer mail (None).
"""

from __future__ import annotations

import dataclasses
import email
import email.message
import email.policy
import logging

from . import arf
from .autoreply import is_auto_reply, is_auto_submitted
from .dsn import parse_dsn_text, recipient_from_group
from .mime import (
    MAX_TEXT_CHARS,
    Leaf,
    addresses_in,
    header_address,
    header_value,
    header_values,
    html_to_text,
    iter_leaves,
    part_text,
    report_part_text,
)
from .model import ENHANCED_STATUS_RE, REPLY_CODE_RE, Report, ReportRecipient
from .notifications import looks_like_notification, notification_report
from .original import find_message_id_line, headers_from_message, headers_from_text, normalize_message_id
from .text import (
    body_gives_reason,
    body_says_bounce,
    notice_of,
    recipients_from_text,
    sender_kind,
    subject_says_bounce,
)

logger = logging.getLogger(__name__)

MAX_RAW_BYTES = 20 * 1024 * 1024
MAX_RECIPIENTS = 1000
_TEXT_TYPES = ("text/plain", "text/html", "text/enriched", "text/richtext")
_DSN_TYPES = ("message/delivery-status", "message/global-delivery-status")
_ORIGINAL_TYPES = ("message/rfc822", "message/global", "message/partial")
_HEADER_TYPES = ("text/rfc822-headers", "text/rfc822-header", "message/global-headers")


def detect_report(msg: email.message.Message | None, raw: bytes | None = None) -> Report | None:
    """The delivery report ``msg`` is (bounce, complaint or auto-reply), or None for ordinary mail.

    ``msg`` is the ``compat32`` tree of the inbound message; ``raw`` (its bytes) is only used when no tree is given.
    Never raises: unreadable input gives None or a best-effort report.
    """
    try:
        if msg is None:
            if not raw:
                return None
            msg = email.message_from_bytes(bytes(raw[:MAX_RAW_BYTES]), policy=email.policy.compat32)
        return _Detector(msg).run()
    except Exception as error:  # noqa: BLE001 - hostile or broken input must not break the inbound pipeline
        logger.warning("delivery report detection gave up: %s", type(error).__name__)
        logger.debug("delivery report detection failure", exc_info=True)
        return None


class _Detector:
    def __init__(self, msg: email.message.Message, depth: int = 0) -> None:
        self.msg = msg
        self.depth = depth
        self.subject = header_value(msg, "Subject")
        self.from_header = header_value(msg, "From")
        self.from_address = header_address(msg, "From")
        try:
            self.report_type = str(msg.get_param("report-type", "") or "").strip().lower()
        except Exception:  # noqa: BLE001
            self.report_type = ""
        self.per_message: dict[str, str] = {}  # RFC 3464 per-message fields, once a bounce is read
        self._original_cache: dict[str, str] | None = None
        self.failed_recipients: list[str] = []
        for value in header_values(msg, "X-Failed-Recipients"):
            for address in addresses_in(value):
                if address not in self.failed_recipients:
                    self.failed_recipients.append(address)
        self.dsn_parts: list[email.message.Message] = []
        self.feedback_parts: list[email.message.Message] = []
        self.originals: list[email.message.Message] = []
        self.header_texts: list[str] = []
        plain: list[str] = []
        html: list[str] = []
        budget = MAX_TEXT_CHARS
        for leaf in iter_leaves(msg):
            if leaf.attached:
                continue
            ctype = leaf.ctype
            if ctype in _DSN_TYPES:
                self.dsn_parts.append(leaf.part)
            elif ctype == "message/feedback-report":
                self.feedback_parts.append(leaf.part)
            elif ctype in _ORIGINAL_TYPES:
                inner = leaf.part.get_payload()
                if isinstance(inner, list) and inner and isinstance(inner[0], email.message.Message):
                    self.originals.append(inner[0])
                elif isinstance(inner, str) and inner.strip():
                    self.header_texts.append(inner[:100_000])
            elif ctype in _HEADER_TYPES:
                self.header_texts.append(part_text(leaf.part))
            elif budget > 0 and self._is_text(leaf):
                text = part_text(leaf.part)[:budget]
                budget -= len(text)
                (html if ctype == "text/html" else plain).append(text)
        if not any(t.strip() for t in plain):
            plain = [html_to_text(t) for t in html]
        self.body = "\n\n".join(t for t in plain if t.strip())
        self.notice, self.rest = notice_of(self.body)

    @staticmethod
    def _is_text(leaf: Leaf) -> bool:
        if leaf.ctype in _TEXT_TYPES:
            return True
        # A multipart whose boundary was wrong or missing stays a string: read it as text.
        return leaf.ctype.startswith("multipart/") or leaf.ctype == "message/partial"

    # --- the questions, in order ---------------------------------------------------------------------------------

    def run(self) -> Report | None:
        for question in (self._notification, self._complaint, self._bounce, self._autoreply):
            report = question()
            if report is not None:
                return report
        return None

    def _notification(self) -> Report | None:
        if self.dsn_parts or self.feedback_parts or not looks_like_notification(self.body):
            return None
        return notification_report(self.body)

    def _complaint(self) -> Report | None:
        fields = None
        if self.feedback_parts:
            fields = arf.parse_fields(report_part_text(self.feedback_parts[0]))
        elif self.report_type == "feedback-report":
            fields = arf.parse_fields(self.body)
        if fields is not None:
            feedback_type, recipients = arf.complaint_from_fields(fields)
            return self._finish("complaint", recipients, feedback_type=feedback_type)
        for original in self.originals[:3]:
            address = arf.jmrp_recipient(original)
            if address:
                return self._finish("complaint", [ReportRecipient(address=address)], feedback_type="abuse")
        return None

    def _bounce(self) -> Report | None:
        certain = bool(self.dsn_parts) or self.report_type in ("delivery-status", "global-delivery-status")
        certain = certain or bool(self.failed_recipients)
        if not certain and not self._looks_like_bounce():
            return None
        groups: list[dict[str, str]] = []
        for part in self.dsn_parts[:5]:
            fields = parse_dsn_text(report_part_text(part))
            groups.extend(fields.groups)
            for key, value in fields.per_message.items():
                self.per_message.setdefault(key, value)
        # DSN fields pasted into the text, or a DSN part the MIME parse missed.
        inline = parse_dsn_text(self.body)
        groups.extend(inline.groups)
        for key, value in inline.per_message.items():
            self.per_message.setdefault(key, value)
        recipients = _dedupe([recipient_from_group(g) for g in groups[:MAX_RECIPIENTS]])
        excluded = self._sender_side_addresses()
        if recipients and any(r.address for r in recipients):
            recipients = [r for r in recipients if r.address] or recipients
            recipients = self._enrich(recipients, excluded)
        else:
            recipients = recipients_from_text(self.notice, self.subject, excluded, self.failed_recipients)
        if not any(r.address for r in recipients) and self.depth < 2:
            # Some gateways wrap the bounce they received into one of their own: read the inner one.
            for original in self.originals[:2]:
                inner = _Detector(original, self.depth + 1).run()
                if inner is not None and inner.type == "bounce" and any(r.address for r in inner.recipients):
                    return inner
        if not any(r.address for r in recipients):
            # Nothing names the recipient: a returned original with a single addressee tells who it was.
            to_addresses = [
                a for a in addresses_in(self._original_headers().get("to", "")) if a not in excluded
            ]
            if len(to_addresses) == 1 and len(recipients) == 1:
                recipients = [dataclasses.replace(recipients[0], address=to_addresses[0])]
        return self._finish("bounce", recipients[:MAX_RECIPIENTS])

    def _autoreply(self) -> Report | None:
        if not is_auto_reply(self.msg, self.subject, self.body):
            return None
        recipient = ReportRecipient(address=self.from_address)
        message_id = normalize_message_id(header_value(self.msg, "In-Reply-To"))
        if message_id is None:
            references = header_value(self.msg, "References").split()
            message_id = normalize_message_id(references[-1]) if references else None
        headers = {"message-id": message_id} if message_id else {}
        return Report("autoreply", [recipient], message_id, headers)

    # --- helpers -------------------------------------------------------------------------------------------------

    def _looks_like_bounce(self) -> bool:
        """Without a DSN part: a machine sender (or machine marks) plus bounce wording, codes or a returned copy."""
        kind = sender_kind(self.from_header, self.from_address)
        subject_bounce = subject_says_bounce(self.subject)
        if kind == "person" and not subject_bounce:
            return False
        auto = is_auto_submitted(self.msg)
        has_code = bool(ENHANCED_STATUS_RE.search(self.notice[:20000]) or _reply_code_line(self.notice))
        has_original = bool(self.originals or self.header_texts or self.rest.strip())
        wording = body_says_bounce(self.notice)
        if not (subject_bounce or wording or has_code):
            return False  # a returned copy and a reason alone could be a person quoting mail
        evidence = sum((subject_bounce, wording, body_gives_reason(self.notice), has_code, has_original))
        if kind == "daemon":
            return evidence >= 2
        if kind == "weak":
            return (
                evidence >= 3
                or (subject_bounce and has_original and evidence >= 2)
                or (auto and evidence >= 2)
            )
        return auto and evidence >= 3

    def _sender_side_addresses(self) -> set[str]:
        """Addresses that are not failed recipients: who the report was sent to (the original sender, VERP), who
        sent the report, and the original's sender."""
        excluded: set[str] = set()
        for name in (
            "To",
            "Cc",
            "Delivered-To",
            "X-Original-To",
            "Envelope-To",
            "X-Envelope-To",
            "Return-Path",
        ):
            for value in header_values(self.msg, name):
                excluded.update(addresses_in(value))
        if self.from_address:
            excluded.add(self.from_address)
        original = self._original_headers()
        for name in ("from", "return-path"):
            excluded.update(addresses_in(original.get(name, "")))
        excluded.update(addresses_in(self.per_message.get("x-postfix-sender", "")))
        return excluded

    def _enrich(self, recipients: list[ReportRecipient], excluded: set[str]) -> list[ReportRecipient]:
        """Fill a DSN recipient's missing status or diagnostic from what the text says about that address."""
        if all(r.status and r.diagnostic for r in recipients):
            return recipients
        from_text = recipients_from_text(
            self.notice, self.subject, excluded, [r.address or "" for r in recipients]
        )
        enriched = []
        for dsn_recipient, text_recipient in zip(recipients, from_text, strict=False):
            status, permanent = dsn_recipient.status, dsn_recipient.permanent
            if not status and text_recipient.status:
                status = text_recipient.status
                permanent = text_recipient.permanent if text_recipient.permanent is not None else permanent
            elif status and status.endswith(".0.0") and (text_recipient.status or "")[:1] == status[0]:
                status = text_recipient.status  # "Status: 5.0.0" while the text says "550 5.1.1 user unknown"
            enriched.append(
                ReportRecipient(
                    address=dsn_recipient.address,
                    status=status,
                    action=dsn_recipient.action or text_recipient.action,
                    permanent=permanent if permanent is not None else text_recipient.permanent,
                    diagnostic=dsn_recipient.diagnostic or text_recipient.diagnostic,
                )
            )
        return enriched + recipients[len(enriched) :]

    def _original_headers(self) -> dict[str, str]:
        if self._original_cache is not None:
            return self._original_cache
        found: dict[str, str] = {}
        sources = [lambda o=o: headers_from_message(o) for o in self.originals[:2]]
        sources += [lambda t=t: headers_from_text(t) for t in self.header_texts[:2]]
        sources.append(lambda: headers_from_text(self.rest))
        for source in sources:
            for key, value in source().items():
                found.setdefault(key, value)
            if "message-id" in found:
                break
        if "message-id" not in found:
            # Header blocks with broken folding end early; a Message-ID line further down still counts.
            texts = [self.rest] + self.header_texts[:2]
            texts += [_body_text(o) for o in self.originals[:2]]
            for text in texts:
                message_id = find_message_id_line(text)
                if message_id:
                    found["message-id"] = message_id
                    break
        self._original_cache = found
        return found

    def _finish(
        self, kind: str, recipients: list[ReportRecipient], feedback_type: str | None = None
    ) -> Report:
        headers = dict(self._original_headers())
        message_id = headers.get("message-id")
        if not message_id:
            message_id = normalize_message_id(self.per_message.get("x-original-message-id"))
        if not message_id and kind == "bounce":
            message_id = find_message_id_line(self.notice) or normalize_message_id(
                header_value(self.msg, "In-Reply-To")
            )
        if message_id:
            headers.setdefault("message-id", message_id)
        return Report(kind, recipients, message_id, headers, feedback_type)


def _body_text(msg: email.message.Message) -> str:
    payload = getattr(msg, "_payload", None)
    return payload[:100_000] if isinstance(payload, str) else ""


def _reply_code_line(text: str) -> bool:
    for line in text[:20000].splitlines():
        stripped = line.strip().lstrip("<>#:;'\"(").strip()
        if stripped[:3].isdigit() and REPLY_CODE_RE.match(stripped):
            return True
        if "said:" in line or "returned '" in line:
            if REPLY_CODE_RE.search(line):
                return True
    return False


def _dedupe(recipients: list[ReportRecipient]) -> list[ReportRecipient]:
    seen: dict[str | None, int] = {}
    result: list[ReportRecipient] = []
    for recipient in recipients:
        key = recipient.address
        if key is not None and key in seen:
            kept = result[seen[key]]
            if kept.status is None and recipient.status:
                result[seen[key]] = recipient
            continue
        if key is not None:
            seen[key] = len(result)
        result.append(recipient)
    return result


__all__ = ["detect_report"]
