"""Open and click tracking, and RFC 8058 one-click unsubscribe headers: pure functions, keys passed in.

Tracking links are opaque: a token carries only (kind, email id, link index) under an HMAC-SHA256 tag, and
the redirect target is looked up in storage by (email id, index). A link can therefore never be turned into
an open redirect, and a tampered token is refused (``verify_token`` returns None).

Mass mail wiring: ``rewrite_links(html, make_url)`` with a ``make_url`` that returns a URL holding a
``{{ _link_N }}`` field (say ``f"{base}/t/c/{{{{ _link_{i} }}}}"``), store the returned targets once per
campaign, then give each recipient ``fields["_link_N"] = make_tracking_token(key, KIND_CLICK, email_id, N)``
when rendering the ``PreparedMessage``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html as html_lib
import re
from collections.abc import Callable
from urllib.parse import urlsplit

from .compose import HeaderInjectionError, iter_html_tags, validate_address, validate_header_value

__all__ = [
    "KIND_CLICK",
    "KIND_OPEN",
    "KIND_UNSUBSCRIBE",
    "derive_key",
    "insert_open_pixel",
    "is_safe_target",
    "list_unsubscribe_headers",
    "make_tracking_token",
    "open_pixel_html",
    "read_tracking_token",
    "rewrite_links",
    "sign_token",
    "TrackingTokens",
    "verify_token",
]

TAG_BYTES = 12  # 96-bit HMAC-SHA256 tag: forging one takes ~2**95 online guesses
MIN_KEY_BYTES = 16
MAX_TOKEN_CHARS = 512
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_-]+\Z")

KIND_OPEN = "o"
KIND_CLICK = "c"
KIND_UNSUBSCRIBE = "u"
_KINDS = frozenset({KIND_OPEN, KIND_CLICK, KIND_UNSUBSCRIBE})
_TRACKING_PURPOSE = b"postdesk-tracking-v1"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _check_key(key: bytes) -> bytes:
    if not isinstance(key, bytes | bytearray):
        raise TypeError("tracking key must be bytes")
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"tracking key must be at least {MIN_KEY_BYTES} bytes")
    return bytes(key)


def _purpose_block(purpose: bytes) -> bytes:
    # Length-prefixed purpose: a token made for one purpose never verifies for another.
    return len(purpose).to_bytes(2, "big") + purpose


def _tag(key: bytes, purpose: bytes, payload: bytes) -> bytes:
    return hmac.digest(key, _purpose_block(purpose) + payload, "sha256")[:TAG_BYTES]


def derive_key(secret: bytes | str, purpose: str) -> bytes:
    """A 32-byte key for one purpose from a longer-lived secret (HMAC-SHA256 as a PRF)."""
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    return hmac.new(
        _check_key(secret), b"postdesk-derive\x00" + purpose.encode("utf-8"), hashlib.sha256
    ).digest()


def sign_token(payload: bytes | str, key: bytes, *, purpose: bytes | str = b"") -> str:
    """``payload`` + a 96-bit HMAC-SHA256 tag, URL-safe base64 without padding. Not encrypted: the payload is
    readable, so put only opaque ids in it."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    if isinstance(purpose, str):
        purpose = purpose.encode("utf-8")
    return _b64(payload + _tag(_check_key(key), purpose, payload))


def verify_token(token: str, key: bytes, *, purpose: bytes | str = b"") -> bytes | None:
    """The payload of a token made by ``sign_token`` with this key and purpose, else None (never raises on
    malformed input). Only the canonical encoding is accepted, and the tag is compared in constant time."""
    key = _check_key(key)
    if isinstance(purpose, str):
        purpose = purpose.encode("utf-8")
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or not _TOKEN_CHARS.match(token):
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(raw) < TAG_BYTES or _b64(raw) != token:
        return None
    payload, tag = raw[:-TAG_BYTES], raw[-TAG_BYTES:]
    if not hmac.compare_digest(tag, _tag(key, purpose, payload)):
        return None
    return payload


# ----------------------------------------------------------------------------------------- tracking ids


def _uvarint(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _read_uvarint(data: bytes, pos: int) -> tuple[int, int] | None:
    n = 0
    shift = 0
    start = pos
    while pos < len(data) and pos - start < 10:
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            if b == 0 and pos - start > 1:
                return None  # non-minimal encoding
            return n, pos
    return None


def make_tracking_token(key: bytes, kind: str, email_id: int, index: int = 0) -> str:
    """An opaque token for (kind, email id, link index): ``KIND_OPEN``, ``KIND_CLICK`` or ``KIND_UNSUBSCRIBE``.
    About 24 characters for realistic ids. The payload signed as ``sign_token`` does with the tracking purpose."""
    return TrackingTokens(key).make(kind, email_id, index)


class TrackingTokens:
    """``make_tracking_token`` for many messages under one key (mass mail): the same tokens, with the key and the
    purpose hashed once instead of per token (a campaign makes a token per link, the open pixel and the
    unsubscribe link of every message)."""

    def __init__(self, key: bytes):
        key = _check_key(key)
        self._mac = hmac.new(key, _purpose_block(_TRACKING_PURPOSE), "sha256")  # what _tag hashes first

    def make(self, kind: str, email_id: int, index: int = 0) -> str:
        if kind not in _KINDS:
            raise ValueError(f"unknown tracking kind {kind!r}")
        if not (0 <= email_id < 2**63 and 0 <= index < 2**31):
            raise ValueError("email id and link index must be non-negative and in range")
        payload = kind.encode("ascii") + _uvarint(email_id) + _uvarint(index)
        mac = self._mac.copy()
        mac.update(payload)
        return _b64(payload + mac.digest()[:TAG_BYTES])


def read_tracking_token(key: bytes, token: str, kind: str) -> tuple[int, int] | None:
    """(email id, link index) if ``token`` is an untampered token of ``kind`` made with ``key``, else None."""
    payload = verify_token(token, key, purpose=_TRACKING_PURPOSE)
    if payload is None or payload[:1] != kind.encode("ascii"):
        return None
    first = _read_uvarint(payload, 1)
    if first is None:
        return None
    email_id, pos = first
    second = _read_uvarint(payload, pos)
    if second is None or second[1] != len(payload):
        return None
    index = second[0]
    if email_id >= 2**63 or index >= 2**31:
        return None
    return email_id, index


# -------------------------------------------------------------------------------------------- links

_STRIP_URL = "".join(
    map(chr, range(0x21))
)  # WHATWG URL parsing strips leading/trailing C0 controls and space
_TAB_NEWLINE = str.maketrans("", "", "\t\n\r")  # ...and removes ASCII tab and newlines anywhere
_UNSAFE_IN_TARGET = re.compile(r"[\x00-\x20\x7f<>\"'`\\]")


def _clean_url(value: str) -> str:
    return value.strip(_STRIP_URL).translate(_TAB_NEWLINE)


def is_safe_target(url: str) -> bool:
    """True for an absolute http(s) URL with a host and no whitespace, controls, quotes or backslashes: what
    a tracking redirect may send a browser to (check it again before redirecting, as defence in depth)."""
    if not isinstance(url, str) or len(url) > 8192 or _UNSAFE_IN_TARGET.search(url):
        return False
    if not url[:8].lower().startswith(("http://", "https://")):
        return False
    try:
        return bool(urlsplit(url).hostname)
    except ValueError:
        return False


def rewrite_links(html: str, make_url: Callable[[int, str], str]) -> tuple[str, list[str]]:
    """Replace the http(s) ``href`` of every ``<a>`` in (already sanitised) ``html`` with ``make_url(i, target)``.

    Returns the new HTML and the original targets, index i for the i-th rewritten link (every occurrence gets
    its own index). Left alone: mailto:, tel:, #anchors, relative and javascript: links, hrefs holding a
    ``{{ field }}`` (unsubscribe and other per-recipient links), and anything inside comments or raw-text
    elements. Targets are HTML-unescaped and cleaned the way a browser would read them; only targets that
    pass ``is_safe_target`` are rewritten.
    """
    out: list[str] = []
    targets: list[str] = []
    pos = 0
    for tag in iter_html_tags(html):
        if tag.name != "a":
            continue
        for name, vs, ve, quote in tag.attrs:
            if name != "href":
                continue
            # the first href wins, as in browsers
            if quote is None:
                break
            raw = html[vs:ve]
            if "{{" in raw:
                break
            target = _clean_url(html_lib.unescape(raw))
            if not is_safe_target(target):
                break
            new = make_url(len(targets), target)
            if not isinstance(new, str):
                raise TypeError("make_url must return a str")
            targets.append(target)
            start, end = (vs - 1, ve + 1) if quote else (vs, ve)
            out.append(html[pos:start])
            out.append('"' + html_lib.escape(new, quote=True) + '"')
            pos = end
            break
    out.append(html[pos:])
    return "".join(out), targets


def open_pixel_html(url: str) -> str:
    """A 1x1 image tag for open tracking (``url`` must be http(s); it is HTML-escaped)."""
    if not is_safe_target(_FIELD.sub("x", url)):
        raise ValueError("open pixel URL must be an absolute http(s) URL")
    src = html_lib.escape(url, quote=True)
    return (
        f'<img src="{src}" width="1" height="1" alt="" '
        'style="display:block;width:1px;height:1px;border:0;margin:0;padding:0" />'
    )


_BODY_END = re.compile(r"</body\s*>", re.I)
_FIELD = re.compile(r"\{\{[ \t]*[A-Za-z_][A-Za-z0-9_.-]*[ \t]*\}\}")


def insert_open_pixel(html: str, url: str) -> str:
    """``html`` with the open pixel just before the last ``</body>`` (or at the end)."""
    pixel = open_pixel_html(url)
    ends = list(_BODY_END.finditer(html))
    if not ends:
        return html + pixel
    at = ends[-1].start()
    return html[:at] + pixel + html[at:]


# ------------------------------------------------------------------------------------------ RFC 8058

_URI_BAD = re.compile(r"[\s<>,\"]")


def list_unsubscribe_headers(https_url: str | None, mailto: str | None = None) -> dict[str, str]:
    """``List-Unsubscribe`` (RFC 2369) with the https URL and the mailto, plus ``List-Unsubscribe-Post:
    List-Unsubscribe=One-Click`` (RFC 8058) when there is an https URL. Both must end up covered by the
    DKIM signature (``DkimSigner`` signs them by default). ``mailto`` is an address or a mailto: URI.

    The URL must identify the recipient and list by an opaque token (``KIND_UNSUBSCRIBE``), and the endpoint
    must accept a POST with body ``List-Unsubscribe=One-Click`` without cookies or confirmation.
    """
    uris = []
    if https_url is not None:
        validate_header_value("List-Unsubscribe", https_url)
        if (
            not https_url.lower().startswith("https://")
            or not is_safe_target(https_url)
            or _URI_BAD.search(https_url)
        ):
            raise HeaderInjectionError(
                "List-Unsubscribe", "one-click unsubscribe needs an absolute https:// URL"
            )
        uris.append(f"<{https_url}>")
    if mailto is not None:
        validate_header_value("List-Unsubscribe", mailto)
        if mailto.lower().startswith("mailto:"):
            address, _, query = mailto[7:].partition("?")
            validate_address("List-Unsubscribe", address)
            if _URI_BAD.search(mailto):
                raise HeaderInjectionError(
                    "List-Unsubscribe", "mailto URI contains spaces, commas or brackets"
                )
            uris.append(f"<{mailto}>")
        else:
            uris.append(f"<mailto:{validate_address('List-Unsubscribe', mailto)}?subject=unsubscribe>")
    if not uris:
        raise ValueError("give an https URL, a mailto, or both")
    headers = {"List-Unsubscribe": ", ".join(uris)}
    if https_url is not None:
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return headers
