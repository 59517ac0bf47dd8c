"""Inbound MIME parsing with bounded time and memory.

``parse_message(raw)`` never raises. It splits the message with its own byte-level splitter (``bytes.find`` for
boundaries, one regex match per header field) and builds the same ``email.message.Message`` tree (policy compat32)
that ``email.parser.BytesParser`` would build: header values as the source text, leaf payloads as ASCII +
surrogateescape strings, ``message/*`` payloads as one nested message, ``message/delivery-status`` as one message per
header block, the stdlib's defect classes on ``msg.defects``. Unlike the stdlib feed parser it

* caps nesting depth, part count, header block size, header count and part size (``Limits``), so a 10,000-deep
  multipart, a million tiny parts or 5 MB of headers cost milliseconds, not minutes;
* never splits bodies into lines: a 30 MB base64 attachment is one ``find`` for the next boundary and one
  ``binascii`` call, with memory about twice the attachment;
* decodes headers itself (RFC 2047 encoded words, RFC 2231 parameters, raw 8-bit values), parses addresses with a
  linear tokenizer (no ReDoS), and decodes text with the declared charset first, then UTF-8, then detection
  (charset-normalizer when installed), then windows-1252.

Decoded header values never contain CR, LF, NUL or other control characters. A message that cannot be parsed at all
(no header field, or an internal error) comes back with ``parse_error`` set: the caller keeps it raw and flags it.
"""

from __future__ import annotations

import binascii
import codecs
import html as _html
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import errors as email_errors
from email.message import Message
from email.utils import parsedate_tz
from urllib.parse import unquote_to_bytes

from postdesk.inbound.sanitize import html_to_text, sanitize_html

__all__ = [
    "DEFAULT_LIMITS",
    "Address",
    "Limits",
    "ParsedAttachment",
    "ParsedMessage",
    "decode_bytes",
    "decode_header_value",
    "first_line",
    "parse_addresses",
    "parse_message",
    "safe_filename",
]


@dataclass(frozen=True)
class Limits:
    """Caps that bound parsing time and memory. Anything past a cap is skipped and noted in ``defects``."""

    max_message_bytes: int = 64 * 1024 * 1024  # the rest of a larger message is not parsed
    max_header_bytes: int = 256 * 1024  # one entity's header block
    max_headers: int = 1000  # header fields per entity
    max_depth: int = 32  # nesting of multipart and message/* entities
    max_parts: int = 1000  # entities in the whole message
    max_part_bytes: int = 48 * 1024 * 1024  # one part's body (encoded)
    max_text_chars: int = 1_000_000  # ParsedMessage.text
    max_html_chars: int = 2_000_000  # HTML given to the sanitiser
    max_inscriptis_chars: int = 8_000  # text from larger HTML (no text part) uses the fast linear conversion
    max_address_chars: int = 64 * 1024  # one address header given to the address parser
    max_addresses: int = 1000  # per address header
    max_subject_chars: int = 1000


DEFAULT_LIMITS = Limits()


@dataclass(slots=True)
class Address:
    name: str  # display name, decoded ('' if none)
    address: str  # local part as written, domain lower-cased ('' when the header had only a name)

    def __str__(self) -> str:
        return f"{self.name} <{self.address}>" if self.name else self.address


@dataclass(slots=True)
class ParsedAttachment:
    filename: str  # safe display name (see safe_filename); never empty
    original_filename: str  # as decoded from the headers ('' if none); CR/LF/NUL-free but otherwise raw
    content_type: str
    data: bytes
    content_id: str | None  # without <>
    inline: bool  # referenced from the HTML body by cid:
    size: int


@dataclass(slots=True)
class ParsedMessage:
    message: Message | None  # the compat32 tree
    subject: str = ""
    from_: Address | None = None
    sender: Address | None = None
    to: list[Address] = field(default_factory=list)
    cc: list[Address] = field(default_factory=list)
    reply_to: list[Address] = field(default_factory=list)
    date: datetime | None = None  # aware, UTC
    message_id: str | None = None  # '<...>'
    in_reply_to: str | None = None
    references: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    text: str = ""
    html: str = ""
    attachments: list[ParsedAttachment] = field(default_factory=list)
    has_remote_images: bool = False
    defects: list[str] = field(default_factory=list)
    parse_error: str | None = None


# Header fields copied into ParsedMessage.headers (first value, decoded), plus any name with these prefixes.
HEADER_NAMES = frozenset(
    {
        "subject", "from", "sender", "to", "cc", "reply-to", "date", "message-id", "in-reply-to", "references",
        "return-path", "received", "delivered-to", "x-original-to", "envelope-to", "x-envelope-to",
        "x-failed-recipients", "auto-submitted", "precedence", "x-precedence", "x-auto-response-suppress",
        "x-autoreply", "x-autorespond", "x-autogenerated", "x-autoresponder", "x-mailer", "user-agent", "x-loop",
        "x-beenthere", "mime-version", "content-type", "content-transfer-encoding", "content-language",
        "accept-language", "x-spam-flag", "x-spam-status", "x-spam-score", "x-spam-level", "feedback-id",
        "x-ms-exchange-generated-message-source", "x-ms-exchange-inbox-rules-loop", "thread-topic", "thread-index",
        "importance", "x-priority", "priority", "organization", "disposition-notification-to",
        "return-receipt-to", "x-mailgun-variables", "x-sg-eid", "x-ses-outgoing", "x-original-message-id",
        "arc-authentication-results", "authentication-results", "dkim-signature", "x-forwarded-to",
        "x-forwarded-for", "x-report-abuse", "x-csa-complaints", "x-mailer-daemon", "x-sender",
    }
)  # fmt: skip
HEADER_PREFIXES = ("list-", "x-auto", "x-spam-", "resent-", "x-original-")
MAX_HEADER_VALUE_CHARS = 16_384
_MAX_FILENAME_CHARS = 180
_MAX_FILENAME_BYTES = 240

# ---------------------------------------------------------------------------------------------------------------
# Characters

# C0 controls, DEL, C1 controls and the Unicode line/paragraph separators (-> space in header values).
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# In bodies: keep tab and newline, drop the other controls (NUL cannot be stored by PostgreSQL).
_BODY_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BODY_CONTROL_CHARS = tuple(chr(c) for c in [*range(9), 11, 12, *range(14, 32), 127])
_NEWLINES = re.compile(r"\r\n?")
_SURROGATE = re.compile("[\udc80-\udcff]")

# ---------------------------------------------------------------------------------------------------------------
# Charsets

# Declared names that Python does not know, or knows as a narrower charset than what mailers really send.
_CHARSET_ALIASES = {
    "unicode-1-1-utf-8": "utf-8",
    "utf8mb4": "utf-8",
    "x-unicode20utf8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
    "iso-8859-8-i": "iso8859-8",
    "iso-8859-8-e": "iso8859-8",
    "iso-8859-6-i": "iso8859-6",
    "iso-8859-6-e": "iso8859-6",
    "x-mac-roman": "mac-roman",
    "x-mac-cyrillic": "mac-cyrillic",
    "windows-874": "cp874",
    "x-sjis": "cp932",
    "windows-31j": "cp932",
    "csshiftjis": "cp932",
    "x-euc-jp": "euc_jp",
    "x-windows-949": "cp949",
    "ks_c_5601": "cp949",
    "ks_c_5601-1987": "cp949",
    "x-gbk": "gb18030",
    "ansi_x3.4-1968": "ascii",
    "iso-10646-ucs-2": "utf-16-be",
    "ucs-2": "utf-16",
    "cp-1252": "cp1252",
    "cp-1251": "cp1251",
    "cp-1250": "cp1250",
}
# Python codec name -> the superset to decode with.
_SUPERSETS = {
    "ascii": "cp1252",
    "iso8859-1": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "big5": "big5hkscs",
    "shift_jis": "cp932",
    "euc_kr": "cp949",
    "tis-620": "cp874",
    "iso8859-11": "cp874",
    "iso8859-9": "cp1254",
    "iso2022_jp": "iso2022_jp_2",
}
# Declared charsets that never fail to decode: valid UTF-8 with them is almost surely mislabelled UTF-8.
_LATIN = frozenset({"ascii", "iso8859-1", "cp1252", "iso8859-15"})
# Text codecs that are not charsets (or are dangerous to apply to mail).
_NOT_CHARSETS = frozenset(
    {"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined", "mbcs", "oem"}
)
_codec_cache: dict[str, str | None] = {}


def _codec(name: str | None) -> str | None:
    """The Python codec for a declared charset name, or None when unknown."""
    if not name:
        return None
    key = name.strip().strip("\"'").strip().lower()
    if not key:
        return None
    try:
        return _codec_cache[key]
    except KeyError:
        pass
    result = None
    for candidate in (_CHARSET_ALIASES.get(key, key), key.replace("_", "-"), key.removeprefix("x-")):
        if len(candidate) > 40:
            break
        try:
            info = codecs.lookup(candidate)
        except (LookupError, ValueError, TypeError):
            continue
        if getattr(info, "_is_text_encoding", True) and info.name not in _NOT_CHARSETS:
            result = _SUPERSETS.get(info.name, info.name)
        break
    if len(_codec_cache) > 512:
        _codec_cache.clear()
    _codec_cache[key] = result
    return result


_HIGH_BYTES = re.compile(rb"[\x80-\xff]")


def _detect(data: bytes) -> str | None:
    """Charset detection for undeclared or wrongly declared 8-bit text (charset-normalizer when installed)."""
    sample = data[:16384]
    if len(_HIGH_BYTES.findall(sample)) < 16:  # too little to tell: windows-1252 is the better guess
        return None
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - optional dependency
        return None
    try:
        best = from_bytes(sample, steps=4, chunk_size=512).best()
    except Exception:  # noqa: BLE001 - detection is only a hint
        return None
    if best is None or not best.encoding or best.encoding.startswith(("utf_16", "utf_32")):
        return None
    return _codec(best.encoding)


def decode_bytes(data: bytes, charset: str | None = None, *, detect: bool = True) -> tuple[str, str | None]:
    """Decode text: the declared charset first (via a superset: windows-1252 for Latin-1/ASCII, GB18030 for
    GB2312, ...), UTF-8 when the declared one fails or is a Latin one and the data is valid UTF-8, then detection,
    then windows-1252/Latin-1 with replacement. Returns (text, defect or None)."""
    if not data:
        return "", None
    if data.isascii():
        stateful = _codec(charset) if charset else None
        if stateful is not None and not stateful.startswith(("iso2022", "utf-7", "hz")):
            stateful = None
        if stateful is None and b"\x1b" in data and (b"\x1b$" in data or b"\x1b(" in data):
            stateful = "iso2022_jp_2"  # undeclared ISO-2022-JP (old Japanese mailers)
        if stateful is not None:
            try:
                return data.decode(stateful), None
            except (UnicodeDecodeError, ValueError):
                pass
        return data.decode("ascii"), None
    if data.startswith(codecs.BOM_UTF8):
        return data[3:].decode("utf-8", "replace"), None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and len(data) % 2 == 0:
        try:
            return data.decode("utf-16"), None
        except UnicodeDecodeError:
            pass
    codec = _codec(charset)
    defect = None
    if charset and codec is None:
        defect = f"unknown charset {charset.strip()[:40]!r}"
    if codec is None or codec in _LATIN or codec == "cp1252":
        try:
            text = data.decode("utf-8")
            if codec is not None and codec != "utf-8":
                defect = f"charset {charset.strip()[:40]!r} declared, UTF-8 found"
            return text, defect
        except UnicodeDecodeError:
            pass
    if codec is not None:
        try:
            return data.decode(codec), defect
        except UnicodeDecodeError:
            if codec == "cp1252":  # five bytes are undefined in windows-1252
                return data.decode("latin-1"), defect
            defect = f"text does not decode as declared charset {charset.strip()[:40]!r}"
        except Exception:  # noqa: BLE001 - a broken codec (utf-7 state errors, ...)
            defect = f"text does not decode as declared charset {charset.strip()[:40]!r}"
        if codec != "utf-8":
            try:
                return data.decode("utf-8"), defect
            except UnicodeDecodeError:
                pass
    if detect:
        detected = _detect(data)
        if detected:
            try:
                return data.decode(detected, "replace"), defect or f"charset detected as {detected}"
            except Exception:  # noqa: BLE001
                pass
    if codec is not None and codec != "utf-8":
        try:
            return data.decode(codec, "replace"), defect
        except Exception:  # noqa: BLE001
            pass
    if codec == "utf-8" or codec is None:
        # Mostly UTF-8 with a few broken sequences (a cut multi-byte character): keep UTF-8.
        text = data.decode("utf-8", "replace")
        if text.count("\ufffd") * 10 <= sum(1 for ch in text[:65536] if ord(ch) > 127):
            return text, defect or "invalid UTF-8 sequences replaced"
    return data.decode("cp1252", "replace"), defect or "8-bit text decoded as windows-1252"


# ---------------------------------------------------------------------------------------------------------------
# Header values (RFC 2047)

_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,75})\?([QqBb])\?([^?]*)\?=")
_FOLD = re.compile(r"\r\n|\r|\n")
_B64_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
_B64_DELETE = bytes(c for c in range(256) if c not in _B64_ALPHABET and c != ord("="))


def _lenient_b64(data: bytes) -> bytes:
    """Base64 that survives missing padding, junk characters and padding in the middle (concatenated chunks)."""
    clean = data.translate(None, _B64_DELETE)
    out = []
    for chunk in re.split(rb"=+", clean):
        if len(chunk) % 4 == 1:
            chunk = chunk[:-1]
        if chunk:
            out.append(binascii.a2b_base64(chunk + b"=" * (-len(chunk) % 4)))
    return b"".join(out)


def _decode_b64(data) -> tuple[bytes, bool]:
    """(decoded, was_broken)."""
    raw = None
    try:
        decoded = binascii.a2b_base64(data)
        if len(decoded) >= len(data) * 0.7 - 4:  # 57 bytes per 76-character line and its line break
            return decoded, False
        # Less than expected: junk or white space, or padding in the middle (binascii stops there)?
        raw = data.encode("ascii", "surrogateescape") if isinstance(data, str) else bytes(data)
        if len(decoded) >= len(raw.translate(None, _B64_DELETE + b"=")) * 3 // 4 - 2:
            return decoded, False
    except (binascii.Error, ValueError):
        pass
    if raw is None:
        raw = data.encode("ascii", "surrogateescape") if isinstance(data, str) else bytes(data)
    return _lenient_b64(raw), True


def _ascii_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _decode_raw_text(text: str, hint: str | None) -> str:
    """A header text that may carry raw 8-bit bytes (surrogate-escaped): UTF-8, else the hint charset."""
    if not _SURROGATE.search(text):
        if "\x1b" in text:
            return decode_bytes(text.encode("ascii", "replace"), hint, detect=False)[0]
        return text
    data = _ascii_bytes(text)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    return decode_bytes(data, hint, detect=False)[0]


def _clean_header(text: str, max_chars: int) -> str:
    return _CONTROL_RE.sub(" ", text).strip()[:max_chars]


def decode_header_value(
    value: str | None, *, charset_hint: str | None = None, max_chars: int = MAX_HEADER_VALUE_CHARS
) -> str:
    """Decode a raw header value: unfold, decode RFC 2047 encoded words (adjacent words of one charset decoded
    together, whitespace between them dropped) and raw 8-bit text (UTF-8, else ``charset_hint``, else
    windows-1252). The result never contains CR, LF, NUL or other control characters, and is capped."""
    if value is None:
        return ""
    if not isinstance(value, str):
        value = str(value)
    value = value[: max_chars * 8]
    if "\n" in value or "\r" in value:
        value = _FOLD.sub("", value)
    if "=?" not in value:
        if value.isascii() and "\x1b" not in value:
            return _CONTROL_RE.sub(" ", value).strip()[:max_chars]
        return _clean_header(_decode_raw_text(value, charset_hint), max_chars)
    out: list[str] = []
    pending: bytearray = bytearray()
    pending_charset: str | None = None
    last = 0
    previous_was_word = False

    def flush() -> None:
        nonlocal pending_charset
        if pending_charset is not None:
            out.append(decode_bytes(bytes(pending), pending_charset, detect=False)[0])
            pending.clear()
            pending_charset = None

    for m in _ENCODED_WORD.finditer(value):
        gap = value[last : m.start()]
        if gap and not (previous_was_word and not gap.strip()):
            flush()
            out.append(_decode_raw_text(gap, charset_hint))
        charset = m.group(1).split("*", 1)[0].lower()
        encoding = m.group(2).upper()
        encoded = m.group(3)
        if encoding == "B":
            data, _broken = _decode_b64(_ascii_bytes(encoded))
        else:
            data = binascii.a2b_qp(_ascii_bytes(encoded), header=True)
        if pending_charset is not None and pending_charset != charset:
            flush()
        pending_charset = charset
        pending.extend(data)
        previous_was_word = True
        last = m.end()
    flush()
    if last < len(value):
        out.append(_decode_raw_text(value[last:], charset_hint))
    return _clean_header("".join(out), max_chars)


# ---------------------------------------------------------------------------------------------------------------
# Parameters (Content-Type, Content-Disposition), RFC 2231

_PARAM_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|;|[^";]+', re.S)
_RFC2231_NAME = re.compile(r"^([^*]+)\*(?:(\d{1,3})(\*?)|)$")


class _Params:
    """Parsed parameters of a structured header: simple values (unquoted) and RFC 2231 sections."""

    __slots__ = ("simple", "sections")

    def __init__(self, pairs: Iterable[tuple[str, str]]):
        self.simple: dict[str, str] = {}
        self.sections: dict[str, dict[int, tuple[str, bool]]] = {}
        for name, value in pairs:
            if "*" in name:
                m = _RFC2231_NAME.match(name)
                if m:
                    base, index, star = m.group(1), m.group(2), m.group(3)
                    if index is None:
                        self.sections.setdefault(base, {}).setdefault(0, (value, True))
                    elif len(self.sections.get(base, ())) < 100:
                        self.sections.setdefault(base, {}).setdefault(int(index), (value, bool(star)))
                    continue
            self.simple.setdefault(name, value)

    def raw(self, name: str) -> str | None:
        return self.simple.get(name)

    def text(self, name: str, hint: str | None = None) -> str | None:
        """The decoded value (RFC 2231 first, then the simple value with RFC 2047 words and raw 8-bit text)."""
        sections = self.sections.get(name)
        if sections:
            charset = None
            data = bytearray()
            for i, index in enumerate(sorted(sections)):
                value, encoded = sections[index]
                if encoded:
                    if i == 0 and value.count("'") >= 2:
                        charset, _lang, value = value.split("'", 2)
                    data.extend(unquote_to_bytes(_ascii_bytes(value)))
                else:
                    data.extend(_ascii_bytes(value))
            text = decode_bytes(bytes(data), charset or hint, detect=False)[0]
            return decode_header_value(text, charset_hint=hint) if "=?" in text else _clean_header(text, 4096)
        value = self.simple.get(name)
        if value is None:
            return None
        return decode_header_value(value, charset_hint=hint, max_chars=4096)


def _unquote(value: str) -> str:
    if value.startswith('"'):
        value = value[1:-1] if len(value) > 1 and value.endswith('"') else value[1:]
        if "\\" in value:
            value = value.replace("\\\\", "\\").replace('\\"', '"')
    return value


def _parse_structured(value: str | None) -> tuple[str, _Params]:
    """(main value as written, parameters) of a Content-Type or Content-Disposition value."""
    if not value:
        return "", _Params(())
    if "\n" in value or "\r" in value:
        value = _FOLD.sub("", value)
    if '"' in value:
        segments: list[str] = []
        current: list[str] = []
        for m in _PARAM_TOKEN.finditer(value):
            token = m.group()
            if token == ";":
                segments.append("".join(current))
                current = []
            else:
                current.append(token)
        segments.append("".join(current))
    else:
        segments = value.split(";")
    pairs = []
    for segment in segments[1:200]:
        name, eq, val = segment.partition("=")
        if eq:
            pairs.append((name.strip().lower(), _unquote(val.strip())))
    return segments[0].strip(), _Params(pairs)


def _content_type(value: str | None, default: str) -> tuple[str, _Params]:
    if value is None:
        return default, _Params(())
    main, params = _parse_structured(value)
    ctype = main.lower()
    if ctype.count("/") != 1:  # what compat32's get_content_type() does
        ctype = "text/plain"
    return ctype, params


# ---------------------------------------------------------------------------------------------------------------
# Addresses (linear tokenizer, no regex backtracking)

_ADDR_TOKEN = re.compile(
    r'(?P<q>"[^"\\]*(?:\\.[^"\\]*)*"?)|(?P<c>\()|(?P<a><[^<>]*>?)|(?P<s>[,;:])|(?P<w>\s+)|(?P<t>[^\s"(),;:<>]+)|(?P<x>[)>])',
    re.S,
)
_COMMENT_CHARS = re.compile(r"[()\\]")


def _read_comment(value: str, pos: int) -> tuple[str, int]:
    """The text of the (nested) comment opening at value[pos - 1], and the position after it."""
    depth = 1
    start = pos
    while depth:
        m = _COMMENT_CHARS.search(value, pos)
        if m is None:
            return value[start:], len(value)
        ch = m.group()
        if ch == "\\":
            pos = m.end() + 1
            continue
        depth += 1 if ch == "(" else -1
        pos = m.end()
    return value[start : pos - 1], pos


def _normalise_address(addr: str) -> str:
    addr = _CONTROL_RE.sub("", "".join(addr.split()))
    local, at, domain = addr.rpartition("@")
    if at:
        addr = f"{local}@{domain.lower().rstrip('.')}"
    return addr[:320]


def _display_name(text: str, hint: str | None) -> str:
    name = decode_header_value(text, charset_hint=hint, max_chars=512)
    name = " ".join(name.split()).strip("\"' ")
    return name[:256]


def _mailbox(tokens: list[tuple[str, str]], hint: str | None) -> Address | None:
    angle = next((i for i, (kind, _) in enumerate(tokens) if kind == "a"), None)
    comments = [text for kind, text in tokens if kind == "c"]
    if angle is not None:
        addr = tokens[angle][1][1:]
        addr = addr[:-1] if addr.endswith(">") else addr
        if addr.startswith("@") and ":" in addr:  # obsolete source route
            addr = addr.split(":", 1)[1]
        phrase = "".join(
            (_unquote(text) if kind == "q" else " " if kind == "w" else text)
            for kind, text in tokens[:angle]
            if kind in ("q", "w", "t", "x")
        )
        name = _display_name(phrase, hint) if phrase.strip() else ""
        if not name and comments:
            name = _display_name(comments[0], hint)
        return Address(name=name, address=_normalise_address(_decode_raw_text(addr, hint)))
    words = [(kind, text) for kind, text in tokens if kind in ("q", "t", "x")]
    if not words:
        return Address(name=_display_name(comments[0], hint), address="") if comments else None
    with_at = [i for i, (kind, text) in enumerate(words) if kind == "t" and "@" in text and text.strip("@")]
    if len(with_at) == 1 and not words[with_at[0]][1].startswith("@") and len(words) > 1:
        i = with_at[0]
        addr = words[i][1]
        name = " ".join(
            _unquote(text) if kind == "q" else text for j, (kind, text) in enumerate(words) if j != i
        )
    elif any("@" in text for _, text in words) or len(words) == 1:
        addr = "".join(text for _, text in words)
        name = ""
    else:
        return Address(name=_display_name(" ".join(_unquote(t) for _, t in words), hint), address="")
    if not name and comments:
        name = comments[0]
    name = _display_name(name, hint) if name else ""
    return Address(name=name, address=_normalise_address(_decode_raw_text(addr, hint)))


_SIMPLE_ADDRESSES = re.compile(r'["()\\:;]|=\?|[\x00-\x1f\x7f]')
_ADDR_SPEC = re.compile(r"[^<>\s,@]+@[^<>\s,@]+")


def _simple_addresses(value: str, limits: Limits) -> list[Address] | None:
    """The common case (no quotes, comments, groups or encoded words), without the tokenizer; or None."""
    result = []
    for piece in value.split(",", limits.max_addresses)[: limits.max_addresses]:
        piece = piece.strip()
        if not piece:
            continue
        if piece.endswith(">"):
            lt = piece.rfind("<")
            name, addr = piece[:lt].strip(), piece[lt + 1 : -1].strip()
            if lt < 0 or "<" in name or ">" in name or "@" in name or not _ADDR_SPEC.fullmatch(addr):
                return None
        elif _ADDR_SPEC.fullmatch(piece):
            name, addr = "", piece
        else:
            return None
        result.append(
            Address(name=" ".join(name.split()).strip("' ")[:256], address=_normalise_address(addr))
        )
    return result


def parse_addresses(
    value: str | None,
    *,
    charset_hint: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    _retry: bool = True,
) -> list[Address]:
    """All mailboxes of an address header (groups flattened, ';' accepted as a separator), in linear time."""
    if not value:
        return []
    if not isinstance(value, str):
        value = str(value)
    value = _FOLD.sub("", value[: limits.max_address_chars])
    if _SIMPLE_ADDRESSES.search(value) is None and value.isascii():
        fast = _simple_addresses(value, limits)
        if fast is not None:
            return fast
    result: list[Address] = []
    current: list[tuple[str, str]] = []

    def flush() -> None:
        if current:
            box = _mailbox(current, charset_hint)
            if box is not None and (box.address or box.name or any(k == "a" for k, _ in current)):
                result.append(box)  # (an empty <> is the null sender of bounces)
            current.clear()

    pos, n = 0, len(value)
    while pos < n and len(result) < limits.max_addresses:
        m = _ADDR_TOKEN.match(value, pos)
        if m is None:  # cannot happen: the alternatives cover every character
            break
        kind = m.lastgroup or "t"
        pos = m.end()
        if kind == "c":
            text, pos = _read_comment(value, pos)
            current.append(("c", text))
        elif kind == "s":
            if m.group() == ":" and not any(k == "a" for k, _ in current):
                current.clear()  # a group's display name
            else:
                flush()
        else:
            current.append((kind, m.group()))
    flush()
    if _retry and "=?" in value and not any("@" in a.address for a in result):
        decoded = decode_header_value(value, charset_hint=charset_hint, max_chars=limits.max_address_chars)
        if "@" in decoded:
            retried = parse_addresses(decoded, charset_hint=charset_hint, limits=limits, _retry=False)
            if any("@" in a.address for a in retried):
                return retried
    return result


def _first_address(value: str | None, hint: str | None, limits: Limits) -> Address | None:
    if not value:
        return None
    found = parse_addresses(value, charset_hint=hint, limits=limits)
    return next((a for a in found if a.address), found[0] if found else None)


# ---------------------------------------------------------------------------------------------------------------
# File names

_BIDI_AND_INVISIBLE = re.compile("[\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]")
_SEPARATORS = re.compile("[/\\\\\u2215\u2044\u29f8\u29f5\uff0f\uff3c\u2216\ufe68]")
_WINDOWS_FORBIDDEN = re.compile(r'[<>:"|?*]')
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.I)
_EXTENSIONS = {
    "application/pdf": ".pdf",
    "application/zip": ".zip",
    "application/msword": ".doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.ms-excel": ".xls",
    "application/pgp-signature": ".asc",
    "application/pkcs7-signature": ".p7s",
    "application/x-pkcs7-signature": ".p7s",
    "application/ics": ".ics",
    "application/json": ".json",
    "application/octet-stream": ".bin",
    "image/jpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/pjpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/bmp": ".bmp",
    "image/tiff": ".tif",
    "image/svg+xml": ".svg",
    "image/heic": ".heic",
    "text/plain": ".txt",
    "text/html": ".html",
    "text/calendar": ".ics",
    "text/csv": ".csv",
    "text/rfc822-headers": ".txt",
    "text/x-vcard": ".vcf",
    "text/vcard": ".vcf",
    "message/rfc822": ".eml",
    "message/global": ".eml",
    "message/delivery-status": ".txt",
    "message/global-delivery-status": ".txt",
    "message/feedback-report": ".txt",
    "message/disposition-notification": ".txt",
    "audio/mpeg": ".mp3",
    "audio/wav": ".wav",
    "video/mp4": ".mp4",
}


def _extension_for(content_type: str) -> str:
    ext = _EXTENSIONS.get(content_type)
    if ext:
        return ext
    if content_type.startswith("text/"):
        return ".txt"
    if content_type.startswith("message/"):
        return ".txt"
    return ".bin"


def safe_filename(name: str | None, content_type: str | None = None) -> str:
    """A display/storage-safe file name: percent-escapes decoded, the last path component only, no control,
    bidi-override or invisible characters, no characters Windows forbids, no leading dots, no reserved device
    names, at most 180 characters (extension kept). Never empty: 'attachment' plus an extension guessed from
    ``content_type``."""
    name = "" if name is None else str(name)
    name = unicodedata.normalize("NFC", name[-4096:])  # the end holds the base name and the extension
    for _ in range(3):  # %2e%2e%2f, and double-encoded %252e...
        if "%" not in name or not _PERCENT.search(name):
            break
        name = unquote_to_bytes(_ascii_bytes(name)).decode("utf-8", "replace")
    name = _BIDI_AND_INVISIBLE.sub("", name)
    name = (
        "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in name)
        if not name.isascii()
        else name
    )
    name = _CONTROL_RE.sub(" ", name)
    components = [c.strip(" .") for c in _SEPARATORS.split(name)]
    components = [c for c in components if c]
    name = components[-1] if components else ""
    name = _WINDOWS_FORBIDDEN.sub("_", name)
    name = " ".join(name.split()).strip(" .")
    if _WINDOWS_RESERVED.match(name):
        name = "_" + name
    if len(name) > _MAX_FILENAME_CHARS or len(name.encode("utf-8")) > _MAX_FILENAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        if not dot or not stem or len(ext) > 16:
            stem, ext = name, ""
        ext = f".{ext}" if ext else ""
        while stem and (
            len(stem) + len(ext) > _MAX_FILENAME_CHARS or len((stem + ext).encode()) > _MAX_FILENAME_BYTES
        ):
            stem = stem[: max(0, min(len(stem) - 1, _MAX_FILENAME_CHARS - len(ext)))]
        name = (stem.rstrip(" .") or "attachment") + ext
    if not name:
        name = "attachment" + (_extension_for(content_type) if content_type else "")
    return name


# ---------------------------------------------------------------------------------------------------------------
# Excerpts


def first_line(text: str | None, length: int = 200) -> str:
    """An excerpt for lists: the first non-blank, non-quoted lines, whitespace collapsed, at most ``length``
    characters (cut at a word, with an ellipsis)."""
    if not text or length <= 0:
        return ""
    words: list[str] = []
    size = 0
    fallback: list[str] = []
    for line in text[: length * 40].split("\n"):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith(">"):
            if not fallback:
                fallback = stripped.lstrip("> ").split()
            continue
        for word in stripped.split():
            words.append(word)
            size += len(word) + 1
        if size > length:
            break
    if not words:
        words = fallback
    excerpt = _CONTROL_RE.sub(" ", " ".join(words))
    if len(excerpt) <= length:
        return excerpt
    cut = excerpt[: length - 1]
    space = cut.rfind(" ")
    if space > length // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"


# ---------------------------------------------------------------------------------------------------------------
# The structural parser

_BLANK_LINE = re.compile(rb"\n\r?\n")
_FIELD = re.compile(rb"([!-9;-~]+)[ \t]*:[ \t]*([^\n]*(?:\n[ \t][^\n]*)*)(?:\n|$)")
_DELIM_TAIL = re.compile(rb"(--)?[ \t]*(?:\r\n|\n|\r|\Z)")
_MULTIPART_CTE = frozenset({"7bit", "8bit", "binary"})


def _blank_line(buf: bytes, start: int, end: int) -> tuple[int, int] | None:
    """The first blank line in buf[start:end]: (end of the line before it, start of the line after it)."""
    crlf = buf.find(b"\n\r\n", start, end)
    lf = buf.find(b"\n\n", start, crlf + 2 if crlf >= 0 else end)
    if lf >= 0 and (crlf < 0 or lf < crlf):
        return lf + 1, lf + 2
    if crlf >= 0:
        return crlf + 1, crlf + 3
    return None


class _Part:
    __slots__ = (
        "msg", "ctype", "maintype", "params", "headers", "buf", "body_start", "end", "children", "path",
        "truncated", "limited", "_disposition",
    )  # fmt: skip

    def __init__(
        self, msg: Message, ctype: str, params: _Params, headers: dict[str, str], buf: bytes, path: str
    ):
        self.msg = msg
        self.ctype = ctype
        self.maintype = ctype.split("/", 1)[0]
        self.params = params
        self._disposition: tuple[str, _Params] | None = None
        self.headers = headers
        self.buf = buf
        self.body_start = 0
        self.end = 0
        self.children: list[_Part] | None = None
        self.path = path
        self.truncated = False
        self.limited = False  # left unsplit because of max_depth or max_parts

    @property
    def disposition(self) -> tuple[str, _Params]:
        if self._disposition is None:
            main, params = _parse_structured(self.headers.get("content-disposition"))
            self._disposition = (main.lower(), params)
        return self._disposition

    @property
    def cte(self) -> str:
        return self.headers.get("content-transfer-encoding", "").strip().lower()

    def body(self) -> memoryview:
        return memoryview(self.buf)[self.body_start : self.end]


def _payload_str(buf: bytes, start: int, end: int) -> str:
    return str(memoryview(buf)[start:end], "ascii", "surrogateescape")


class _Splitter:
    def __init__(self, limits: Limits):
        self.limits = limits
        self.count = 0
        self.defects: list[str] = []
        self._noted: set[str] = set()

    def note(self, part_or_msg: _Part | Message | None, defect, text: str) -> None:
        if part_or_msg is not None and defect is not None:
            msg = part_or_msg.msg if isinstance(part_or_msg, _Part) else part_or_msg
            msg.defects.append(defect)
        if text not in self._noted and len(self.defects) < 100:
            self._noted.add(text)
            self.defects.append(text)

    # -- headers ------------------------------------------------------------------------------------------------
    def headers(
        self, buf: bytes, start: int, end: int, msg: Message, path: str
    ) -> tuple[int, dict[str, str]]:
        """Parse the header block at buf[start:end] into msg; returns (body start, first value per lower name)."""
        first: dict[str, str] = {}
        if start >= end:
            return end, first
        if buf.startswith(b"\n", start):
            return start + 1, first
        if buf.startswith(b"\r\n", start):
            return start + 2, first
        limit = min(end, start + self.limits.max_header_bytes)
        blank = _blank_line(buf, start, limit)
        if blank is not None:
            hend, body_start = blank
        elif limit < end:  # header block over the cap: parse what fits, skip to the blank line
            hend = buf.rfind(b"\n", start, limit) + 1 or limit
            blank = _blank_line(buf, limit - 2, end)
            body_start = blank[1] if blank is not None else end
            self.note(None, None, f"header block larger than {self.limits.max_header_bytes} bytes: truncated")
        else:
            hend = body_start = end
        pos = start
        if buf.startswith(b"From ", pos) and path == "":
            nl = buf.find(b"\n", pos, hend)
            line_end = hend if nl < 0 else nl + 1
            msg.set_unixfrom(buf[pos:line_end].rstrip(b"\r\n").decode("ascii", "surrogateescape"))
            pos = line_end
        count = 0
        max_headers = self.limits.max_headers
        while pos < hend:
            fm = _FIELD.match(buf, pos, hend)
            if fm is not None:
                pos = fm.end()
                count += 1
                if count > max_headers:
                    self.note(msg, None, f"more than {max_headers} header fields: the rest ignored")
                    break
                name = fm.group(1).decode("ascii")
                value = fm.group(2).rstrip(b"\r\n").decode("ascii", "surrogateescape")
                msg._headers.append((name, value))  # what Message.set_raw does, without the call
                key = name.lower()
                if key not in first:
                    first[key] = value
                continue
            ch = buf[pos : pos + 1]
            nl = buf.find(b"\n", pos, hend)
            line_end = hend if nl < 0 else nl + 1
            if ch in (b" ", b"\t"):
                line = buf[pos:line_end].decode("ascii", "surrogateescape")
                self.note(
                    msg,
                    email_errors.FirstHeaderLineIsContinuationDefect(line),
                    "header continuation line first",
                )
                pos = line_end
                continue
            if buf.startswith(b"From ", pos):
                line = buf[pos:line_end].rstrip(b"\r\n").decode("ascii", "surrogateescape")
                self.note(
                    msg, email_errors.MisplacedEnvelopeHeaderDefect(line), "misplaced envelope (From ) line"
                )
                pos = line_end
                continue
            if ch == b":":
                self.note(
                    msg, email_errors.InvalidHeaderDefect("Missing header name."), "header without a name"
                )
                pos = line_end
                continue
            if ch in (b"\r", b"\n"):
                pos = line_end
                body_start = pos
                break
            # A line that is neither a header nor blank: the body starts here (no separating blank line).
            self.note(
                msg, email_errors.MissingHeaderBodySeparatorDefect(), "no blank line between headers and body"
            )
            body_start = pos
            break
        return body_start, first

    # -- entities -----------------------------------------------------------------------------------------------
    def entity(self, buf: bytes, start: int, end: int, depth: int, default_type: str, path: str) -> _Part:
        self.count += 1
        msg = Message()
        if default_type != "text/plain":
            msg.set_default_type(default_type)
        body_start, first = self.headers(buf, start, end, msg, path)
        ctype, params = _content_type(first.get("content-type"), default_type)
        part = _Part(msg, ctype, params, first, buf, path)
        part.body_start, part.end = body_start, end
        maintype = part.maintype
        if maintype == "multipart":
            self.multipart(part, depth)
        elif maintype == "message":
            self.message(part, depth)
        else:
            self.leaf(part)
        return part

    def leaf(self, part: _Part) -> None:
        if part.end - part.body_start > self.limits.max_part_bytes:
            part.end = part.body_start + self.limits.max_part_bytes
            part.truncated = True
            self.note(
                part, None, f"part {part.path or 'body'} larger than {self.limits.max_part_bytes} bytes: cut"
            )
        part.msg._payload = _payload_str(part.buf, part.body_start, part.end)

    def _too_deep(self, part: _Part, depth: int) -> bool:
        if depth < self.limits.max_depth and self.count < self.limits.max_parts:
            return False
        if depth >= self.limits.max_depth:
            self.note(None, None, f"nesting deeper than {self.limits.max_depth}: inner parts kept unparsed")
        else:
            self.note(None, None, f"more than {self.limits.max_parts} parts: the rest kept unparsed")
        part.limited = True
        self.leaf(part)
        return True

    def message(self, part: _Part, depth: int) -> None:
        if self._too_deep(part, depth):
            return
        buf, start, end = part.buf, part.body_start, part.end
        cte = part.cte
        if cte in ("base64", "quoted-printable"):
            data = _decode_transfer(part.body(), cte)[0]
            buf, start, end = data, 0, len(data)
        if part.ctype in ("message/delivery-status", "message/global-delivery-status"):
            # Like the stdlib, see the line break that precedes the next boundary (it can make an empty block).
            if buf is part.buf and end < len(buf) and buf[end] in (10, 13):
                end += 2 if buf.startswith(b"\r\n", end) else 1
            children = self.header_blocks(buf, start, end, depth, part.path)
        else:
            children = [self.entity(buf, start, end, depth + 1, "text/plain", _child_path(part.path, 1))]
        part.children = children
        part.msg._payload = [child.msg for child in children]

    def header_blocks(self, buf: bytes, start: int, end: int, depth: int, path: str) -> list[_Part]:
        """message/delivery-status: one header-only message per block; a block ends at a blank line, which is
        consumed (as the stdlib does, further blank lines make empty blocks)."""
        blocks: list[_Part] = []
        pos = start
        while pos < end and len(blocks) < 100 and self.count < self.limits.max_parts:
            if buf[pos] == 10 or buf.startswith(b"\r\n", pos):
                block_end = pos
            else:
                m = _BLANK_LINE.search(buf, pos, end)
                block_end = m.start() + 1 if m is not None else end
            child = self.entity(
                buf, pos, block_end, depth + 1, "text/plain", _child_path(path, len(blocks) + 1)
            )
            blocks.append(child)
            if block_end >= end:
                break
            pos = block_end + (1 if buf[block_end] == 10 else 2)
        return blocks

    def _find_delimiter(self, buf: bytes, dash: bytes, pos: int, end: int, at_line_start: bool):
        """The next delimiter line at or after pos: (line start, is close delimiter, start of the next line)."""
        nl_dash = b"\n" + dash
        size = len(dash)
        while pos < end:
            if at_line_start and buf.startswith(dash, pos, end):
                line = pos
            else:
                i = buf.find(nl_dash, max(pos - 1, 0), end)
                if i < 0:
                    return None
                line = i + 1
            at_line_start = False
            tail = _DELIM_TAIL.match(buf, line + size, end)
            if tail is not None:
                return line, tail.group(1) is not None, tail.end()
            pos = line + size
        return None

    def multipart(self, part: _Part, depth: int) -> None:
        msg = part.msg
        boundary = part.params.raw("boundary")
        if boundary is None and "boundary" in part.params.sections:
            boundary = part.params.text("boundary")
        boundary = boundary.rstrip() if boundary else boundary
        if not boundary:
            self.note(
                part, email_errors.NoBoundaryInMultipartDefect(), f"multipart without boundary ({part.ctype})"
            )
            self.leaf(part)
            return
        if self._too_deep(part, depth):
            return
        if part.cte and part.cte not in _MULTIPART_CTE:
            self.note(
                part, email_errors.InvalidMultipartContentTransferEncodingDefect(), "multipart with encoding"
            )
        buf, start, end = part.buf, part.body_start, part.end
        dash = b"--" + boundary.encode("utf-8", "surrogateescape")
        spans: list[tuple[int, int]] = []
        preamble_end = None
        first_line = start
        content_start = None
        closed = False
        epilogue_start = end
        budget = self.limits.max_parts - self.count
        pos = start
        at_line_start = True
        while True:
            found = self._find_delimiter(buf, dash, pos, end, at_line_start)
            if found is None:
                break
            line, is_close, after = found
            # The line break before a delimiter belongs to the delimiter.
            content_end = line
            if content_end > start and buf[content_end - 1] == 10:
                content_end -= 1
                if content_end > start and buf[content_end - 1] == 13:
                    content_end -= 1
            if content_start is None:
                first_line = line
                if is_close:  # a close delimiter before any part
                    preamble_end = line
                    break
                preamble_end = content_end
            elif line > content_start:
                spans.append((content_start, max(content_end, content_start)))
                if len(spans) >= budget:
                    self.note(None, None, f"more than {self.limits.max_parts} parts: the rest kept unparsed")
                    content_start = None
                    closed = True
                    epilogue_start = end
                    break
            if is_close:
                closed = True
                epilogue_start = after
                content_start = None
                break
            content_start = after
            pos, at_line_start = after, True
        if not spans and content_start is None and not closed:
            # No delimiter at all (or only a close delimiter): the stdlib keeps the body as the payload.
            self.note(
                part, email_errors.StartBoundaryNotFoundDefect(), f"start boundary not found ({part.ctype})"
            )
            msg._payload = _payload_str(buf, start, preamble_end if preamble_end is not None else end)
            msg.epilogue = ""
            return
        if content_start is not None:  # ran to the end without a close delimiter
            if content_start < end:
                last = end
                if buf[last - 1] == 10:
                    last -= 1
                    if last > content_start and buf[last - 1] == 13:
                        last -= 1
                spans.append((content_start, last))
            self.note(
                part, email_errors.CloseBoundaryNotFoundDefect(), f"close boundary not found ({part.ctype})"
            )
        if preamble_end is not None and first_line > start:
            msg.preamble = _payload_str(buf, start, preamble_end)
        if closed:
            msg.epilogue = _payload_str(buf, epilogue_start, end) if epilogue_start < end else ""
        child_type = "message/rfc822" if part.ctype == "multipart/digest" else "text/plain"
        children = []
        for i, (a, b) in enumerate(spans, 1):
            children.append(self.entity(buf, a, b, depth + 1, child_type, _child_path(part.path, i)))
        part.children = children
        msg._payload = [child.msg for child in children]


def _child_path(path: str, index: int) -> str:
    return f"{path}.{index}" if path else str(index)


def _uudecode(data: bytes) -> bytes:
    out = bytearray()
    started = False
    for line in data.splitlines()[:2_000_000]:
        if not started:
            started = line.startswith(b"begin")
            continue
        if line.strip() == b"end":
            break
        try:
            out.extend(binascii.a2b_uu(line))
        except binascii.Error:
            try:  # some encoders pad lines badly
                nbytes = (((line[0] - 32) & 63) * 4 + 5) // 3 if line else 0
                out.extend(binascii.a2b_uu(line[:nbytes]))
            except (binascii.Error, IndexError):
                continue
    return bytes(out)


def _decode_transfer(body, cte: str) -> tuple[bytes, str | None]:
    """Undo the Content-Transfer-Encoding: (bytes, defect or None)."""
    if cte == "base64":
        data, broken = _decode_b64(body)
        return data, ("invalid base64" if broken else None)
    if cte == "quoted-printable":
        return binascii.a2b_qp(body), None
    if cte in ("x-uuencode", "uuencode", "x-uue", "uue"):
        return _uudecode(bytes(body)), None
    return bytes(body), None


# ---------------------------------------------------------------------------------------------------------------
# Bodies and attachments

_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]{1,40})""", re.I)


def _unflow(text: str, delsp: bool) -> str:
    """RFC 3676 format=flowed: join soft line breaks (a line ending in a space)."""
    out: list[str] = []
    buffer = ""
    for line in text.split("\n"):
        if line == "-- ":
            if buffer:
                out.append(buffer)
                buffer = ""
            out.append(line)
            continue
        if line.startswith(" "):
            line = line[1:]  # space-stuffing
        if line.endswith(" "):
            buffer += line[:-1] if delsp else line
            continue
        out.append(buffer + line)
        buffer = ""
    if buffer:
        out.append(buffer)
    return "\n".join(out)


def _normalise_text(text: str) -> str:
    if "\r" in text:
        text = _NEWLINES.sub("\n", text)
    if any(ch in text for ch in _BODY_CONTROL_CHARS):
        text = _BODY_CONTROLS.sub("", text)
    return text


def _text_to_html(text: str) -> str:
    return '<div style="white-space:pre-wrap">' + _html.escape(text) + "</div>"


_ALTERNATIVE_KEEP = frozenset({"text/plain", "text/html", "text/calendar"})


class _Segment:
    __slots__ = ("text", "html")

    def __init__(self, text: str | None, html: str | None):
        self.text = text
        self.html = html


class _Collector:
    def __init__(self, splitter: _Splitter, limits: Limits, hint: str | None):
        self.splitter = splitter
        self.limits = limits
        self.hint = hint
        self.attachments: list[tuple[_Part, bytes]] = []

    def decoded(self, part: _Part) -> bytes:
        data, defect = _decode_transfer(part.body(), part.cte)
        if defect:
            self.splitter.note(None, None, f"{defect} in part {part.path or 'body'}")
        return data

    def text_of(self, part: _Part) -> str:
        data = self.decoded(part)
        charset = part.params.raw("charset")
        if not charset and part.ctype == "text/html":
            m = _META_CHARSET.search(data, 0, 4096)
            if m:
                charset = m.group(1).decode("ascii")
        text, defect = decode_bytes(data, charset)
        if defect:
            self.splitter.note(None, None, f"{defect} in part {part.path or 'body'}")
        text = _normalise_text(text)
        if part.ctype == "text/plain" and (part.params.raw("format") or "").lower() == "flowed":
            text = _unflow(text, (part.params.raw("delsp") or "").lower() == "yes")
        return text

    def is_body(self, part: _Part) -> bool:
        return part.ctype in ("text/plain", "text/html") and self.is_inline(part)

    def is_inline(self, part: _Part) -> bool:
        """No 'attachment' disposition and no file name."""
        disposition, dparams = part.disposition
        if disposition == "attachment":
            return False
        return not (dparams.raw("filename") or dparams.sections.get("filename") or part.params.raw("name"))

    def attach(self, part: _Part) -> None:
        if part.children is not None and part.maintype == "message":
            data = bytes(part.body())
            if part.cte in ("base64", "quoted-printable"):
                data = self.decoded(part)
        else:
            data = self.decoded(part)
        self.attachments.append((part, data))

    def collect(self, part: _Part, out: list[_Segment]) -> None:
        children = part.children
        if children is None and part.maintype == "multipart" and not part.limited:
            # A multipart that could not be split (no boundary, start boundary missing): show its text.
            text = _normalise_text(decode_bytes(bytes(part.body()), None)[0]).strip("\n")
            if text.strip():
                out.append(_Segment(text, None))
            return
        if children is None or part.maintype != "multipart":
            if part.maintype != "message" and self.is_body(part):
                text = self.text_of(part)
                out.append(_Segment(None, text) if part.ctype == "text/html" else _Segment(text, None))
            else:
                self.attach(part)
            return
        subtype = part.ctype.split("/", 1)[1]
        if not children:
            return
        if subtype == "alternative":
            best_text: list[_Segment] | None = None
            best_html: list[_Segment] | None = None
            for child in children:
                if (
                    child.maintype == "text"
                    and child.ctype not in _ALTERNATIVE_KEEP
                    and self.is_inline(child)
                ):
                    continue  # another rendering (text/watch-html, text/enriched, ...), not an attachment
                segments: list[_Segment] = []
                self.collect(child, segments)
                if any(s.text is not None for s in segments):
                    best_text = segments
                if any(s.html is not None for s in segments):
                    best_html = segments
            if best_text is None and best_html is None:
                return
            text = _join_text(best_text, self.limits.max_inscriptis_chars) if best_text is not None else None
            html = _join_html(best_html) if best_html is not None else None
            out.append(_Segment(text, html))
        elif subtype == "related":
            start = (part.params.raw("start") or "").strip().strip("<>")
            root = children[0]
            if start:
                root = next((c for c in children if _content_id(c) == start), root)
            self.collect(root, out)
            for child in children:
                if child is not root:
                    self.attach(child)
        elif subtype in ("report", "signed"):
            self.collect(children[0], out)
            for child in children[1:]:
                self.attach(child)
        elif subtype == "encrypted":
            for child in children:
                self.attach(child)
        else:  # mixed, digest, parallel and unknown subtypes
            for child in children:
                self.collect(child, out)


def _join_text(segments: list[_Segment], inscriptis_max_chars: int = 8000) -> str:
    # HTML-only segments are sanitised first: lxml (under inscriptis) is quadratic on some hostile markup.
    return "\n\n".join(
        s.text if s.text is not None else html_to_text(sanitize_html(s.html or "")[0], inscriptis_max_chars)
        for s in segments
    ).strip("\n")


def _join_html(segments: list[_Segment]) -> str:
    return "\n".join(s.html if s.html is not None else _text_to_html(s.text or "") for s in segments)


def _content_id(part: _Part) -> str | None:
    value = part.headers.get("content-id")
    if not value:
        return None
    value = _clean_header(_decode_raw_text(_FOLD.sub("", value), None), 998).strip().strip("<>").strip()
    return value or None


_CID_VALUE = re.compile(r'[^"\'()<>\s&]*(?:&amp;[^"\'()<>\s&]*)*')


def _referenced_cids(html: str) -> set[str]:
    """Content-IDs referenced as cid: in the sanitised HTML (each also lower-cased)."""
    low = html.lower()
    found: set[str] = set()
    pos = low.find("cid:")
    while pos >= 0 and len(found) < 2000:
        m = _CID_VALUE.match(html, pos + 4)
        ref = _html.unescape(m.group()) if m else ""
        cid = unquote_to_bytes(_ascii_bytes(ref)).decode("utf-8", "replace").strip().strip("<>")
        if cid:
            found.add(cid)
            found.add(cid.lower())
        pos = low.find("cid:", pos + 4)
    return found


# ---------------------------------------------------------------------------------------------------------------
# Top level


def _parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    value = decode_header_value(value, max_chars=256)
    try:
        parsed = parsedate_tz(value)
        if parsed is None:
            return None
        year, month, day, hour, minute, second = parsed[:6]
        if not 1900 <= year <= 2200:
            return None
        date = datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC)
        return date - timedelta(seconds=parsed[9] or 0)
    except (ValueError, TypeError, OverflowError, IndexError):
        return None


_MSGID = re.compile(r"<([^<>\s]{1,990})>")


def _message_id(value: str | None) -> str | None:
    if not value:
        return None
    value = decode_header_value(value, max_chars=2000)
    m = _MSGID.search(value)
    if m:
        return f"<{m.group(1)}>"
    token = value.strip().split()[0].strip("<>") if value.strip() else ""
    return f"<{token[:990]}>" if token else None


def _header_set(first: dict[str, str], hint: str | None) -> dict[str, str]:
    headers = {}
    for name, value in first.items():
        if name in HEADER_NAMES or name.startswith(HEADER_PREFIXES):
            headers[name] = decode_header_value(value, charset_hint=hint, max_chars=4096)
    return headers


def _charset_hint(root: _Part) -> str | None:
    stack = [root]
    seen = 0
    while stack and seen < 50:
        part = stack.pop(0)
        seen += 1
        if part.maintype == "text":
            charset = part.params.raw("charset")
            if _codec(charset) not in (None, "ascii", "utf-8"):
                return charset
        if part.children and part.maintype == "multipart":
            stack.extend(part.children)
    return None


def _fill_headers(result: ParsedMessage, first: dict[str, str], hint: str | None, limits: Limits) -> None:
    get = first.get
    result.subject = decode_header_value(
        get("subject"), charset_hint=hint, max_chars=limits.max_subject_chars
    )
    result.from_ = _first_address(get("from"), hint, limits)
    result.sender = _first_address(get("sender"), hint, limits)
    result.to = [a for a in parse_addresses(get("to"), charset_hint=hint, limits=limits) if a.address]
    result.cc = [a for a in parse_addresses(get("cc"), charset_hint=hint, limits=limits) if a.address]
    result.reply_to = [
        a for a in parse_addresses(get("reply-to"), charset_hint=hint, limits=limits) if a.address
    ]
    result.date = _parse_date(get("date"))
    result.message_id = _message_id(get("message-id"))
    in_reply_to = get("in-reply-to")
    result.in_reply_to = decode_header_value(in_reply_to, max_chars=998) or None if in_reply_to else None
    references = get("references")
    if references is not None:
        # raw 8-bit bytes arrive surrogate-escaped: decoded like any header text (a surrogate cannot be stored)
        result.references = _clean_header(_decode_raw_text(_FOLD.sub("", references), hint), 65536) or None
    result.headers = _header_set(first, hint)


def _build(raw: bytes, limits: Limits, result: ParsedMessage) -> None:
    if len(raw) > limits.max_message_bytes:
        raw = raw[: limits.max_message_bytes]
        result.defects.append(f"message larger than {limits.max_message_bytes} bytes: the rest not parsed")
    if raw[:1] in (b"\r", b"\n"):
        raw = raw.lstrip(b"\r\n")
    if b"\n" not in raw[:65536] and b"\r" in raw[:65536]:  # old Mac line endings
        raw = raw.replace(b"\r", b"\n")
    splitter = _Splitter(limits)
    root = splitter.entity(raw, 0, len(raw), 0, "text/plain", "")
    msg = root.msg
    if msg.get_content_maintype() == "multipart" and not msg.is_multipart():
        msg.defects.append(email_errors.MultipartInvariantViolationDefect())
    result.message = msg
    if not root.headers and not msg._headers:
        result.parse_error = "no header fields: not an email message"
    hint = _charset_hint(root)
    _fill_headers(result, root.headers, hint, limits)

    collector = _Collector(splitter, limits, hint)
    segments: list[_Segment] = []
    collector.collect(root, segments)
    html = ""
    if any(s.html is not None for s in segments):
        html = _join_html(segments)
        if len(html) > limits.max_html_chars:
            html = html[: limits.max_html_chars]
            splitter.note(None, None, f"HTML body larger than {limits.max_html_chars} characters: cut")
        result.html, result.has_remote_images = sanitize_html(html)
    if segments:
        inscriptis_max = limits.max_inscriptis_chars
        if len(segments) == 1 and segments[0].text is None and result.html:
            text = html_to_text(result.html, inscriptis_max)  # already sanitised
        else:
            text = _join_text(segments, inscriptis_max)
        if not text.strip() and result.html:
            text = html_to_text(result.html, inscriptis_max)
        if len(text) > limits.max_text_chars:
            text = text[: limits.max_text_chars]
            splitter.note(None, None, f"text body longer than {limits.max_text_chars} characters: cut")
        result.text = text
    cids = _referenced_cids(result.html) if result.html else set()
    for part, data in collector.attachments:
        _disposition, dparams = part.disposition
        original = dparams.text("filename", collector.hint) or part.params.text("name", collector.hint) or ""
        content_id = _content_id(part)
        content_type = part.ctype if _TOKEN_TYPE.fullmatch(part.ctype) else "application/octet-stream"
        result.attachments.append(
            ParsedAttachment(
                filename=safe_filename(original, content_type),
                original_filename=original,
                content_type=content_type,
                data=data,
                content_id=content_id,
                inline=bool(content_id and (content_id in cids or content_id.lower() in cids)),
                size=len(data),
            )
        )
    result.defects.extend(splitter.defects)


_TOKEN_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")


def _best_effort_headers(raw: bytes, limits: Limits, result: ParsedMessage) -> None:
    try:
        splitter = _Splitter(limits)
        msg = Message()
        _, first = splitter.headers(raw, 0, min(len(raw), limits.max_header_bytes), msg, "")
        _fill_headers(result, first, None, limits)
    except Exception:  # noqa: BLE001, S110 - best effort only
        pass


def parse_message(raw: bytes, limits: Limits = DEFAULT_LIMITS) -> ParsedMessage:
    """Parse a raw RFC 5322 message. Never raises: a message that cannot be parsed comes back with
    ``parse_error`` set (and the headers filled when possible), for the caller to keep raw and flag."""
    result = ParsedMessage(message=None)
    try:
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        elif not isinstance(raw, bytes):
            raw = bytes(raw)
        if len(raw) < 4096 and not raw.strip():
            result.parse_error = "empty message"
            return result
        _build(raw, limits, result)
    except Exception as exc:  # noqa: BLE001 - never raise: the message is kept raw and flagged
        result.parse_error = f"{type(exc).__name__}: {str(exc)[:200]}"
        if isinstance(raw, bytes | bytearray):
            _best_effort_headers(bytes(raw), limits, result)
    return result
