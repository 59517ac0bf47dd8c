"""Defensive helpers over the stdlib ``compat32`` message tree: bounded walking, payload decoding, text extraction.

Everything here tolerates broken input: missing or wrong boundaries (a multipart whose payload stayed a string is read
as text), unknown or misspelt charsets, bad base64, deep nesting and huge parts (walks and decodes are capped).
"""

from __future__ import annotations

import binascii
import codecs
import email.header
import email.message
import email.policy
import email.utils
import quopri
import re
from dataclasses import dataclass
from html.parser import HTMLParser

MAX_PARTS = 300  # parts visited per message
MAX_DEPTH = 40  # MIME nesting followed
MAX_PART_BYTES = 256 * 1024  # decoded bytes kept per part
MAX_TEXT_CHARS = 300 * 1024  # characters of text kept per message
MAX_HEADER_CHARS = 2000
MAX_REPARSES = 4  # broken multiparts re-split per message
MAX_REPARSE_CHARS = 2 * 1024 * 1024
MAX_REPARSED_PARTS = 50

_CHARSET_ALIASES = {
    "unicode-1-1-utf-7": "utf-7",
    "x-unicode-1-1-utf-7": "utf-7",
    "uft-8": "utf-8",
    "utf8": "utf-8",
    "x-sjis": "shift_jis",
    "shift-jis": "shift_jis",
    "sjis": "shift_jis",
    "ks_c_5601-1987": "cp949",
    "iso-8859-8-i": "iso-8859-8",
    "x-mac-roman": "mac_roman",
    "windows-874": "cp874",
}
_UNKNOWN_CHARSETS = {
    "",
    "x-unknown",
    "unknown",
    "unknown-8bit",
    "x-user-defined",
    "default",
    "us-ascii",
    "ascii",
}


@dataclass
class Leaf:
    """A non-multipart part, with where it sits."""

    part: email.message.Message
    ctype: str  # lower-cased content type as declared ('text/plain' when unparsable)
    attached: bool  # inside an attached message (message/rfc822): the returned original, not the report
    depth: int


def iter_leaves(msg: email.message.Message) -> list[Leaf]:
    """The leaves of ``msg`` in document order, depth-first, bounded in count and depth (no recursion).

    A multipart whose boundary is missing or wrong (its payload stayed a string) is split again on the boundary
    lines actually present, so its parts are not lost.
    """
    leaves: list[Leaf] = []
    stack: list[tuple[email.message.Message, bool, int]] = [(msg, False, 0)]
    visited = 0
    reparse_budget = MAX_REPARSES
    while stack and visited < MAX_PARTS:
        part, attached, depth = stack.pop()
        visited += 1
        try:
            ctype = part.get_content_type().lower()
        except Exception:  # noqa: BLE001 - a header the parser could not make sense of
            ctype = "text/plain"
        payload = part.get_payload()
        # message/delivery-status and feedback reports are parsed into header blocks: keep them whole.
        if ctype in ("message/delivery-status", "message/global-delivery-status", "message/feedback-report"):
            leaves.append(Leaf(part, ctype, attached, depth))
            continue
        if isinstance(payload, list):
            if depth >= MAX_DEPTH:
                continue
            child_attached = attached or ctype in ("message/rfc822", "message/global", "message/partial")
            children = [p for p in payload if isinstance(p, email.message.Message)]
            if ctype.startswith("message/") and children:
                # The attached message itself counts as a leaf too, so its headers can be read.
                leaves.append(Leaf(part, ctype, attached, depth))
            for child in reversed(children):
                stack.append((child, child_attached, depth + 1))
            continue
        if (
            ctype.startswith("multipart/")
            and isinstance(payload, str)
            and reparse_budget > 0
            and depth < MAX_DEPTH
        ):
            reparse_budget -= 1
            raw_payload = getattr(part, "_payload", payload)  # keeps 8-bit bytes as surrogate escapes
            children = split_broken_multipart(raw_payload if isinstance(raw_payload, str) else payload)
            if children:
                for child in reversed(children):
                    stack.append((child, attached, depth + 1))
                continue
        leaves.append(Leaf(part, ctype, attached, depth))
    return leaves


_BOUNDARY_LINE_RE = re.compile(r"^--([^\s]{1,200}?)(--)?[ \t]*\r?$", re.MULTILINE)


def split_broken_multipart(text: str) -> list[email.message.Message]:
    """The parts of a multipart body whose declared boundary did not match: split on the most frequent
    boundary-looking line instead. [] when there is none."""
    text = text[:MAX_REPARSE_CHARS]
    counts: dict[str, int] = {}
    for index, match in enumerate(_BOUNDARY_LINE_RE.finditer(text)):
        if index > 2000:
            break
        token = match.group(1)
        if token.strip("-"):
            counts[token] = counts.get(token, 0) + 1
    if not counts:
        return []
    boundary = max(counts, key=lambda token: (counts[token], len(token)))
    pieces = re.split(rf"^--{re.escape(boundary)}(?:--)?[ \t]*\r?$", text, flags=re.MULTILINE)
    parts = []
    for piece in pieces[1:MAX_REPARSED_PARTS]:
        piece = piece[1:] if piece.startswith("\n") else piece
        if not piece.strip():
            continue
        try:
            parts.append(email.message_from_string(piece, policy=email.policy.compat32))
        except Exception:  # noqa: BLE001
            continue
    return parts


def part_bytes(part: email.message.Message, limit: int = MAX_PART_BYTES) -> bytes:
    """The decoded body of a non-multipart part (base64 / quoted-printable undone), at most ``limit`` bytes."""
    # The stored payload keeps raw 8-bit bytes as surrogate escapes; get_payload() would already have replaced
    # them using the declared charset, which is often wrong.
    payload = getattr(part, "_payload", None)
    if payload is None:
        try:
            payload = part.get_payload()
        except Exception:  # noqa: BLE001
            return b""
    if isinstance(payload, list):
        return b""
    if isinstance(payload, bytes):
        return payload[:limit]
    if not isinstance(payload, str):
        return b""
    cte = str(part.get("content-transfer-encoding", "") or "").strip().lower()
    # Cut the encoded text before decoding: base64 and quoted-printable never shrink by more than 3x.
    payload = payload[: limit * 3 + 64]
    try:
        raw = payload.encode("ascii", "surrogateescape")
    except UnicodeError:
        raw = payload.encode("utf-8", "replace")
    if cte == "base64":
        data = _b64decode(raw)
    elif cte == "quoted-printable":
        try:
            data = quopri.decodestring(raw)
        except Exception:  # noqa: BLE001
            data = raw
    else:
        data = raw
    return data[:limit]


def _b64decode(raw: bytes) -> bytes:
    cleaned = re.sub(rb"[^A-Za-z0-9+/=]", b"", raw)
    cleaned = cleaned.split(b"=", 1)[0]
    cleaned = cleaned[: len(cleaned) - len(cleaned) % 4] if len(cleaned) % 4 == 1 else cleaned
    cleaned += b"=" * (-len(cleaned) % 4)
    try:
        return binascii.a2b_base64(cleaned)
    except (binascii.Error, ValueError):
        return raw


def _codec(charset: str | None) -> str | None:
    if not charset:
        return None
    name = str(charset).strip().strip("\"'").lower()
    name = _CHARSET_ALIASES.get(name, name)
    if name in _UNKNOWN_CHARSETS:
        return None
    try:
        return codecs.lookup(name).name
    except (LookupError, ValueError):
        return None


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Bytes to text with the declared charset when it works, else by sniffing (ISO-2022-JP, UTF-8, cp1252)."""
    codec = _codec(charset)
    if codec:
        try:
            return data.decode(codec)
        except (UnicodeError, LookupError):
            pass
    if b"\x1b$" in data or b"\x1b(" in data:
        try:
            return data.decode("iso-2022-jp")
        except UnicodeError:
            pass
    try:
        return data.decode("utf-8")
    except UnicodeError:
        pass
    if codec:
        try:
            return data.decode(codec, "replace")
        except (UnicodeError, LookupError):
            pass
    return data.decode("cp1252", "replace")


def part_text(part: email.message.Message, limit: int = MAX_PART_BYTES) -> str:
    data = part_bytes(part, limit)
    if not data:
        return ""
    try:
        charset = part.get_content_charset()
    except Exception:  # noqa: BLE001
        charset = None
    return decode_bytes(data, charset)


def header_value(msg: email.message.Message, name: str) -> str:
    """A header's text with RFC 2047 words decoded and whitespace collapsed ('' when absent or unreadable)."""
    values = header_values(msg, name, 1)
    return values[0] if values else ""


def header_values(msg: email.message.Message, name: str, limit: int = 20) -> list[str]:
    """Every occurrence of a header, decoded. Raw 8-bit header bytes (common in bounces) are sniffed, not dropped."""
    wanted = name.lower()
    found = []
    for key, value in getattr(msg, "_headers", [])[:1000]:
        if str(key).lower() == wanted:
            found.append(decode_words(value if isinstance(value, str) else str(value)))
            if len(found) >= limit:
                break
    return found


def decode_words(value: str) -> str:
    value = value[:MAX_HEADER_CHARS]
    if any("\udc80" <= ch <= "\udcff" for ch in value):
        value = decode_bytes(value.encode("ascii", "surrogateescape"), None)
    if "=?" in value:
        try:
            chunks = []
            for text, charset in email.header.decode_header(value):
                if isinstance(text, bytes):
                    text = decode_bytes(text, charset)
                chunks.append(text)
            value = "".join(chunks)
        except Exception:  # noqa: BLE001 - keep the raw words
            pass
    return " ".join(value.split())


# Addresses: a practical addr-spec (no quoted local parts); the local part may hold an encoded word as some MTAs
# echo it back ("=?utf-8?B?...?=@example.org").
ADDRESS_RE = re.compile(
    r"(?<![\w.+=?/-])((?:=\?[\w-]{1,40}\?[bBqQ]\?[^?\s]{1,200}\?=|[\w!#$%&'*+/=?^`{|}~-]{1,64}"
    r"(?:\.[\w!#$%&'*+/=?^`{|}~-]{1,64}){0,16})@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?){0,10})"
)


def clean_address(value: str | None) -> str | None:
    """The first address in ``value`` ('Name <a@b>', 'rfc822; a@b', '<a@b>') lower-cased, or None."""
    if not value:
        return None
    match = ADDRESS_RE.search(value[:1000])
    if not match:
        return None
    address = match.group(1).strip(".").lower()
    return address if "@" in address and not address.startswith("@") else None


def addresses_in(value: str | None) -> list[str]:
    if not value:
        return []
    seen: list[str] = []
    for match in ADDRESS_RE.finditer(value[:5000]):
        address = match.group(1).strip(".").lower()
        if address not in seen:
            seen.append(address)
    return seen


def header_address(msg: email.message.Message, name: str) -> str | None:
    value = header_value(msg, name)
    if not value:
        return None
    try:
        _, address = email.utils.parseaddr(value)
    except Exception:  # noqa: BLE001
        address = ""
    return clean_address(address) or clean_address(value)


class _TextExtractor(HTMLParser):
    _BLOCK = {
        "br",
        "p",
        "div",
        "tr",
        "li",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "table",
        "pre",
        "hr",
        "td",
        "blockquote",
    }

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "head", "title"):
            self._skip += 1
        elif tag in self._BLOCK:
            self.chunks.append("\n")

    def handle_endtag(self, tag):
        if tag in ("script", "style", "head", "title"):
            self._skip = max(0, self._skip - 1)
        elif tag in self._BLOCK:
            self.chunks.append("\n")

    def handle_data(self, data):
        if not self._skip:
            self.chunks.append(data)


def html_to_text(html: str) -> str:
    parser = _TextExtractor()
    try:
        parser.feed(html[:MAX_PART_BYTES])
        parser.close()
    except Exception:  # noqa: BLE001 - HTMLParser is lenient, but be sure
        return re.sub(r"<[^<>]{0,2000}>", " ", html[:MAX_PART_BYTES])
    text = "".join(parser.chunks)
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def report_part_text(part: email.message.Message) -> str:
    """The text of a report part, whether the parser made it a list of header blocks or left it a string."""
    payload = part.get_payload()
    if isinstance(payload, list):
        chunks = []
        for block in payload[:500]:
            if not isinstance(block, email.message.Message):
                continue
            lines = [f"{name}: {value}" for name, value in block.items()[:200]]
            body = block.get_payload()
            if isinstance(body, str) and body.strip():
                lines.append(body[:20000])
            chunks.append("\n".join(lines))
        return "\n\n".join(chunks)
    data = part_bytes(part)
    return decode_bytes(data, None) if data else ""
