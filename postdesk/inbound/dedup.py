"""The same message arriving twice for a project (a sender retrying after a timeout, or one message forwarded to two of
our addresses) is stored once. Two arrivals are the same message when they have the same Message-ID and the same
content apart from trace headers (Received, Delivered-To, ARC, ...). A different message reusing a Message-ID has
different content, so a different key, and is kept."""

from __future__ import annotations

import hashlib
import re

TRACE_HEADERS = frozenset(
    {
        b"received",
        b"return-path",
        b"delivered-to",
        b"x-original-to",
        b"x-forwarded-to",
        b"x-forwarded-for",
        b"x-forwarded-encrypted",
        b"authentication-results",
        b"received-spf",
        b"arc-seal",
        b"arc-message-signature",
        b"arc-authentication-results",
        b"x-received",
        b"x-google-smtp-source",
        b"x-gm-message-state",
        b"x-original-authentication-results",
        b"x-envelope-from",
        b"x-envelope-to",
        b"x-spam-status",
        b"x-spam-score",
        b"x-spam-checker-version",
        b"x-virus-scanned",
        b"dkim-filter",
        b"x-ms-exchange-organization-authas",
        b"x-ms-exchange-crosstenant-originalarrivaltime",
        b"x-ms-exchange-transport-endtoendlatency",
        b"x-rspamd-queue-id",
        b"x-rspamd-server",
        b"x-rspamd-action",
        b"x-postdesk-intake",
    }
)
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_LINE = re.compile(rb"\r?\n(?![ \t])")
MAX_HEADER_SCAN = 1024 * 1024


def split_headers(raw: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """(name lower-cased, unfolded value) pairs and the body; tolerant of junk lines."""
    match = _HEADER_END.search(raw, 0, MAX_HEADER_SCAN)
    if match is None:
        head, body = raw[:MAX_HEADER_SCAN], raw[MAX_HEADER_SCAN:]
    else:
        head, body = raw[: match.start()], raw[match.end() :]
    headers = []
    for line in _LINE.split(head):
        name, sep, value = line.partition(b":")
        if not sep or not name or b" " in name.strip():
            continue
        headers.append((name.strip().lower(), re.sub(rb"\r?\n[ \t]+", b" ", value).strip()))
    return headers, body


def message_id_of(raw: bytes) -> bytes | None:
    for name, value in split_headers(raw)[0]:
        if name == b"message-id" and value:
            return value
    return None


def dedup_key(raw: bytes) -> str | None:
    headers, body = split_headers(raw)
    message_id = next((v for n, v in headers if n == b"message-id" and v), None)
    if message_id is None:
        return None
    digest = hashlib.sha256()
    for name, value in headers:
        if name in TRACE_HEADERS:
            continue
        digest.update(name + b"\0" + value + b"\n")
    digest.update(b"\0\0")
    digest.update(body.replace(b"\r\n", b"\n").rstrip(b"\n"))
    return digest.hexdigest()
