"""The returned original message's headers: from an attached message/rfc822 or text/rfc822-headers part, or from a
header block pasted into the bounce text. They are what ties a report to the email we sent (Message-ID,
X-Postdesk-Id, the VERP Return-Path)."""

from __future__ import annotations

import email.message
import re

from .mime import decode_words

WANTED_HEADERS = ("message-id", "from", "to", "subject", "return-path", "x-postdesk-id")
MAX_BLOCK_LINES = 300

_MSGID_RE = re.compile(r"<([^<>\s]{1,900})>")
_FIELD_RE = re.compile(r"^([!-9;-~]{1,76})[ \t]*:[ \t]?(.*)$")


def normalize_message_id(value: str | None) -> str | None:
    """'<id@host>' from a Message-ID / In-Reply-To value ('<a@b> (comment)', 'a@b', '<a@b> <c@d>')."""
    if not value:
        return None
    match = _MSGID_RE.search(value[:2000])
    if match and "@" in match.group(1):
        return f"<{match.group(1)}>"
    token = value.strip().split()[0] if value.strip() else ""
    token = token.strip("<>")
    if "@" in token and len(token) < 900:
        return f"<{token}>"
    return None


def headers_from_message(msg: email.message.Message) -> dict[str, str]:
    found: dict[str, str] = {}
    for name in WANTED_HEADERS:
        try:
            value = msg.get(name)
        except Exception:  # noqa: BLE001
            value = None
        if value is None:
            continue
        text = decode_words(str(value))
        if name == "message-id":
            text = normalize_message_id(text) or ""
        if text:
            found[name] = text
    return found


def headers_from_text(text: str) -> dict[str, str]:
    """The wanted headers of the first header block in ``text`` (pasted originals, often indented or with an mbox
    'From ' line first)."""
    lines = text[:200_000].splitlines()
    start = None
    for index, line in enumerate(lines[:60]):
        if _FIELD_RE.match(line.strip()) and not line.strip().lower().startswith(("http:", "https:")):
            start = index
            break
    if start is None:
        return {}
    indent = len(lines[start]) - len(lines[start].lstrip())
    fields: list[list[str]] = []
    for line in lines[start : start + MAX_BLOCK_LINES]:
        if not line.strip():
            break
        body = line[indent:] if line[:indent].strip() == "" else line.lstrip()
        if body[:1] in (" ", "\t") and fields:
            fields[-1][1] += " " + body.strip()
            continue
        match = _FIELD_RE.match(body)
        if not match:
            if fields:
                break
            continue
        fields.append([match.group(1).lower(), match.group(2)])
    found: dict[str, str] = {}
    for name, value in fields:
        if name in WANTED_HEADERS and name not in found:
            value = decode_words(value)
            if name == "message-id":
                value = normalize_message_id(value) or ""
            if value:
                found[name] = value
    return found


def find_message_id_line(text: str) -> str | None:
    """A 'Message-ID: <...>' line anywhere in ``text`` (reports that quote the original's headers in prose)."""
    match = re.search(r"(?im)^[ \t>]*message-id[ \t]*:[ \t]*(<[^<>\s]{1,900}>)", text[:100_000])
    return normalize_message_id(match.group(1)) if match else None
