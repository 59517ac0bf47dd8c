"""Building outbound messages as bytes, fast and safe, without ``email.message.EmailMessage``.

Everything here is pure: no Django, no I/O. The output is wire-ready: CRLF line endings only (no bare CR or
LF, so no SMTP smuggling through a body), every line at most 998 octets (headers folded at 76 where
possible, as RFC 2047 wants for lines with encoded-words; bodies quoted-printable when a line is longer
than 78 or not plain ASCII, a lone "." line encoded as ``=2E``), non-ASCII headers as RFC 2047
encoded-words, attachment names as RFC 2231 parameters.

Header injection (GHSA-v3q9-hj7j-63hq, bpo-39073): CR, LF, NUL and other control characters in any header
value, display name, address, filename or template field that lands in a header are refused with
``HeaderInjectionError`` (a ``ValueError``; the web and API layers answer 400) before anything is queued.
There is no Bcc parameter and a ``Bcc`` extra header is refused: blind copies belong to the SMTP envelope only.

Two ways to build:

* ``build_message(...)`` for one message (a reply, a notification): about 2 KB in tens of microseconds.
* ``prepare_template(...)`` once per mass mailing, then ``PreparedMessage.render(...)`` per recipient:
  the MIME skeleton, static headers, attachments and every template line without a ``{{ field }}``
  are encoded once; a render encodes only the subject and the lines that hold fields.
"""

from __future__ import annotations

import base64
import binascii
import functools
import html as html_lib
import re
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from urllib.parse import quote as _pct_quote

__all__ = [
    "HeaderInjectionError",
    "InvalidAddressError",
    "PreparedMessage",
    "build_message",
    "format_address",
    "format_date",
    "make_message_id",
    "prepare_template",
    "validate_address",
    "validate_header_value",
]


class HeaderInjectionError(ValueError):
    """A header value, display name, address or filename was refused; ``field`` names where it was going.

    Raised for CR/LF/NUL/control characters (header injection) and, as ``InvalidAddressError``, for
    addresses that are not one bare addr-spec. Map it to a 4xx answer: nothing has been queued.
    """

    http_status = 400

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class InvalidAddressError(HeaderInjectionError):
    """An address is not one valid bare addr-spec (``local@domain``)."""


# C0 controls but HTAB, then DEL, and NEL and LINE/PARAGRAPH SEPARATOR (str.splitlines() breaks lines on
# those, which is how bpo-39073-style injections slip through), and lone surrogates (not encodable).
_BAD_HEADER_CHARS = re.compile("[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029\ud800-\udfff]")
_FIELD_NAME = re.compile(r"[!-9;-~]+\Z")  # RFC 5322 ftext: printable ASCII except ":"


def validate_header_value(field: str, value: str) -> str:
    """Return ``value`` unchanged, or raise ``HeaderInjectionError`` if it holds CR, LF or another control."""
    if not isinstance(value, str):
        raise TypeError(f"{field}: header value must be str, not {type(value).__name__}")
    m = _BAD_HEADER_CHARS.search(value)
    if m is not None:
        ch = m.group()
        if ch in "\r\n":
            reason = "contains CR or LF (header injection refused)"
        else:
            reason = f"contains control character U+{ord(ch):04X}"
        raise HeaderInjectionError(field, reason)
    return value


def _validate_field_name(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError("header name must be str")
    if not _FIELD_NAME.match(name):
        validate_header_value("header name", name)
        raise HeaderInjectionError(name or "header name", "is not a valid header field name")
    return name


# ---------------------------------------------------------------------------------------------- addresses

_ATEXT = "A-Za-z0-9!#$%&'*+/=?^_`{|}~-"
_LOCAL_PART = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*\Z")
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)\Z")
_ADDRESS_REFUSED = frozenset(' \t,;:<>()[]"\\')


@functools.lru_cache(maxsize=4096)
def _domain_to_ascii(domain: str) -> str:
    """The lower-case ASCII (punycode) form of ``domain``; raises ``ValueError`` with a reason."""
    d = domain.lower()
    if not d.isascii():
        try:
            d = d.encode("idna").decode("ascii")  # IDNA 2003 (stdlib); nameprep also lower-cases
        except UnicodeError:
            raise ValueError("domain cannot be converted to IDNA (punycode)") from None
    if len(d) > 253:
        raise ValueError("domain is longer than 253 characters")
    labels = d.split(".")
    if len(labels) < 2:
        raise ValueError("domain has no dot")
    for label in labels:
        if not _LABEL.match(label):
            raise ValueError(f"domain label {label!r} is not valid")
    if labels[-1].isdigit():
        raise ValueError("domain literals and IP addresses are not accepted")
    return d


def _normalize_domain(field: str, domain: str) -> str:
    try:
        return _domain_to_ascii(domain)
    except ValueError as e:
        raise InvalidAddressError(field, str(e)) from None


def validate_address(field: str, address: str) -> str:
    """The bare addr-spec ``local@domain`` (domain lower-case, IDN as punycode), or ``InvalidAddressError``.

    Refused: CR/LF/controls (as ``HeaderInjectionError``), display names, angle brackets, commas and other
    list or group syntax, quoted or non-ASCII local parts (SMTPUTF8 is not supported), domain literals,
    a missing or doubled ``@``, and over-long addresses (local part 64, domain 253, whole 254).
    """
    validate_header_value(field, address)
    addr = address.strip(" \t")
    if not addr:
        raise InvalidAddressError(field, "address is empty")
    bad = _ADDRESS_REFUSED.intersection(addr)
    if bad:
        raise InvalidAddressError(field, f"address contains {''.join(sorted(bad))!r}: give one bare address")
    local, at, domain = addr.rpartition("@")
    if not at:
        raise InvalidAddressError(field, "address has no @")
    if not local:
        raise InvalidAddressError(field, "address has an empty local part")
    if "@" in local:
        raise InvalidAddressError(field, "address has more than one @")
    if not local.isascii():
        raise InvalidAddressError(field, "non-ASCII local parts need SMTPUTF8, which is not supported")
    if len(local) > 64:
        raise InvalidAddressError(field, "local part is longer than 64 characters")
    if not _LOCAL_PART.match(local):
        raise InvalidAddressError(field, "local part is not a valid dot-atom")
    result = f"{local}@{_normalize_domain(field, domain)}"
    if len(result) > 254:
        raise InvalidAddressError(field, "address is longer than 254 characters")
    return result


def make_message_id(domain: str) -> str:
    """A new globally unique ``<time.random@domain>`` (milliseconds in hex, 80 random bits)."""
    d = _normalize_domain("Message-ID", domain)
    return f"<{time.time_ns() // 1_000_000:x}.{secrets.token_hex(10)}@{d}>"


# ------------------------------------------------------------------------------------- RFC 2047 encoding

_Q_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")  # RFC 2047 5(3)
_Q_BYTE = ["_" if b == 0x20 else chr(b) if b in _Q_SAFE else f"={b:02X}" for b in range(256)]
_Q_UNSAFE_BYTES = bytes(b for b in range(256) if b not in _Q_SAFE and b != 0x20)
_EW_WRAP = len("=?utf-8?q?") + len("?=")  # 12
_EW_MAX = 75  # RFC 2047 2: an encoded-word is at most 75 characters...
_LINE_MAX = 76  # ...and a header line holding one at most 76
_PHRASE_FIRST_MAX = _LINE_MAX - len("Reply-To: ")  # a display name's first word fits after any address field


def _encode_words(text: str, first_max: int = _EW_MAX) -> list[str]:
    """``text`` as RFC 2047 encoded-words, never splitting a character: the first at most ``first_max``
    characters (so that it fits after "Name: " on a 76-character line), the others at most 75.

    Q encoding (restricted to the phrase-safe set, so the words are valid in display names too) when it is
    not longer than B. Whitespace between adjacent encoded-words is ignored by decoders, so the words may
    be separated by folding whitespace.
    """
    raw = text.encode("utf-8")
    if not raw:
        return []
    safe = len(raw.translate(None, _Q_UNSAFE_BYTES))
    q_len = safe + 3 * (len(raw) - safe)
    b_len = 4 * ((len(raw) + 2) // 3)
    words: list[str] = []
    limit = max(
        min(first_max, _EW_MAX) - _EW_WRAP, 12
    )  # a long header name still leaves room for a character
    if q_len <= b_len:
        if q_len <= limit:  # the common case: one word
            return ["=?utf-8?q?" + "".join(map(_Q_BYTE.__getitem__, raw)) + "?="]
        cur: list[str] = []
        cur_len = 0
        for i, b in enumerate(raw):
            enc = _Q_BYTE[b]
            if cur_len + len(enc) > limit:
                if b & 0xC0 == 0x80:
                    # inside a UTF-8 sequence: move the sequence's earlier bytes to the next word
                    k = i
                    while raw[k] & 0xC0 == 0x80:
                        k -= 1
                    moved = cur[len(cur) - (i - k) :]
                    del cur[len(cur) - (i - k) :]
                else:
                    moved = []
                words.append("=?utf-8?q?" + "".join(cur) + "?=")
                limit = _EW_MAX - _EW_WRAP
                cur = moved
                cur_len = sum(map(len, moved))
            cur.append(enc)
            cur_len += len(enc)
        if cur:
            words.append("=?utf-8?q?" + "".join(cur) + "?=")
        return words
    i = 0
    n = len(raw)
    while i < n:
        j = i + limit // 4 * 3  # raw bytes that fit as base64
        limit = _EW_MAX - _EW_WRAP
        if j >= n:
            j = n
        else:
            while raw[j] & 0xC0 == 0x80:  # never cut inside a UTF-8 sequence
                j -= 1
        words.append("=?utf-8?b?" + base64.b64encode(raw[i:j]).decode("ascii") + "?=")
        i = j
    return words


# ---------------------------------------------------------------------------------------------- folding


def _fold(name: str, atoms: Sequence[str], width: int = _LINE_MAX) -> str:
    """``name: atom atom ...`` + CRLF, folded (CRLF SP replaces a joining space) to keep lines <= width.

    Atoms never contain CR/LF; an atom longer than a line stays whole (callers keep atoms < 998).
    """
    joined = " ".join(atoms)
    if len(name) + 2 + len(joined) <= width:
        return f"{name}: {joined}\r\n"
    line = len(name) + 1
    out = [name, ":"]
    first = True
    for atom in atoms:
        if not first and atom and line + 1 + len(atom) > width:
            out.append("\r\n ")
            line = 1 + len(atom)
        else:
            out.append(" ")
            line += 1 + len(atom)
        out.append(atom)
        first = False
    out.append("\r\n")
    return "".join(out)


def _unstructured(name: str, value: str) -> str:
    """An unstructured header (Subject, X-...): plain folded ASCII when possible, else RFC 2047 words."""
    if not value:
        return f"{name}:\r\n"
    if value.isascii() and "=?" not in value:
        atoms = value.split(" ")
        if max(map(len, atoms)) <= 76:
            return _fold(name, atoms)
    return _fold(name, _encode_words(value, _LINE_MAX - len(name) - 2))


def _structured(name: str, value: str, width: int = _LINE_MAX) -> str:
    """A structured ASCII header value given by the caller, folded at spaces; never over 998 octets."""
    if not value.isascii():
        return _unstructured(name, value)
    atoms = value.split(" ")
    if len(name) + 2 + len(atoms[0]) > 998 or max(map(len, atoms)) > 996:
        raise HeaderInjectionError(name, "has a word too long for a 998-octet line")
    return _fold(name, atoms, width)


# ------------------------------------------------------------------------------------ address headers

_PHRASE_ATOMS = re.compile(rf"[{_ATEXT}]+(?: [{_ATEXT}]+)*\Z")
_MAX_NAME = 256


def _phrase_atoms(field: str, name: str) -> list[str]:
    validate_header_value(field, name)
    name = name.strip(" \t")
    if len(name) > _MAX_NAME:
        raise HeaderInjectionError(field, f"display name is longer than {_MAX_NAME} characters")
    if not name:
        return []
    if name.isascii():
        if "=?" not in name and _PHRASE_ATOMS.match(name):
            return name.split(" ")
        return ['"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"']
    return _encode_words(name, _PHRASE_FIRST_MAX)


def _address_atoms(field: str, entry: str | tuple[str, str] | Sequence[str]) -> list[str]:
    if isinstance(entry, str):
        name, address = "", entry
    else:
        name, address = entry
    addr = validate_address(field, address)
    phrase = _phrase_atoms(field, name) if name else []
    if not phrase:
        return [addr]
    phrase.append(f"<{addr}>")
    return phrase


def format_address(name: str | None, address: str) -> str:
    """``Name <local@domain>`` (RFC 2047 for a non-ASCII name, quoted when it holds specials), or the bare
    address when there is no name. Raises ``HeaderInjectionError`` / ``InvalidAddressError``."""
    return " ".join(_address_atoms("address", (name or "", address)))


def _address_header(name: str, entries: Iterable[str | tuple[str, str]]) -> str:
    atoms: list[str] = []
    for entry in entries:
        if atoms:
            atoms[-1] += ","
        atoms.extend(_address_atoms(name, entry))
    return _fold(name, atoms)


# ---------------------------------------------------------------------------------------- dates and ids

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_date(date: datetime) -> str:
    """RFC 5322 date-time of an aware datetime, in its own offset: ``Tue, 05 Mar 2024 14:07:09 +0100``."""
    offset = date.utcoffset()
    if offset is None:
        raise ValueError("date must be timezone-aware")
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    hh, mm = divmod(abs(minutes), 60)
    return (
        f"{_DAYS[date.weekday()]}, {date.day:02d} {_MONTHS[date.month - 1]} {date.year:04d} "
        f"{date.hour:02d}:{date.minute:02d}:{date.second:02d} {sign}{hh:02d}{mm:02d}"
    )


_DATE_CACHE: tuple[int, str] = (0, "")


def _date_now() -> str:
    global _DATE_CACHE
    now = int(time.time())
    cached = _DATE_CACHE
    if cached[0] != now:
        cached = (now, format_date(datetime.fromtimestamp(now, UTC)))
        _DATE_CACHE = cached
    return cached[1]


_MSG_ID = re.compile(r"<[!-;=?-~]+@[!-;=?-~]+>\Z")  # printable ASCII, no spaces or angle brackets
_MSG_ID_LOOSE = re.compile(r"<[!-;=?-~]+>\Z")  # inbound ids in the wild sometimes lack the "@"
_MAX_REFERENCES = 20


def _message_id(field: str, value: str) -> str:
    validate_header_value(field, value)
    v = value.strip(" \t")
    if not v.startswith("<"):
        v = f"<{v}>"
    if not _MSG_ID.match(v) or len(v) > 900:
        raise HeaderInjectionError(field, "is not a valid <id@domain> message id")
    return v


def _loose_message_id(field: str, value: str) -> str | None:
    """A message id from inbound mail for threading; malformed ones are dropped (None), injection refused."""
    validate_header_value(field, value)
    v = value.strip(" \t")
    if not v:
        return None
    if not v.startswith("<"):
        v = f"<{v}>"
    if not _MSG_ID_LOOSE.match(v) or len(v) > 900:
        return None
    return v


def _references(values: Iterable[str]) -> list[str]:
    ids = [i for i in (_loose_message_id("References", v) for v in values) if i is not None]
    if len(ids) > _MAX_REFERENCES:  # keep the thread root and the most recent ancestors
        ids = ids[:1] + ids[-(_MAX_REFERENCES - 1) :]
    return ids


# -------------------------------------------------------------------------------------- extra headers

_OWNED_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "reply-to",
        "subject",
        "date",
        "message-id",
        "in-reply-to",
        "references",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "content-disposition",
        "dkim-signature",
        "return-path",
    }
)
_UNFOLDED_HEADERS = frozenset({"list-unsubscribe", "list-unsubscribe-post"})


def _extra_headers(headers: Mapping[str, str] | None) -> str:
    if not headers:
        return ""
    out = []
    for name, value in headers.items():
        _validate_field_name(name)
        lname = name.lower()
        if lname in _OWNED_HEADERS:
            raise HeaderInjectionError(
                name, "is set by the message builder and cannot be given as an extra header"
            )
        validate_header_value(name, value)
        # Some relays re-fold List-Unsubscribe and break signatures: keep it on one line when it fits.
        out.append(_structured(name, value, 998 if lname in _UNFOLDED_HEADERS else _LINE_MAX))
    return "".join(out)


# ----------------------------------------------------------------------------------------------- bodies

_7BIT_TEXT = bytes([0x09, 0x0A, *range(0x20, 0x7F)])  # what a 7bit text body may hold (newlines still LF)


def _normalize_newlines(text: str) -> str:
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


_QP_TOKEN = re.compile(rb"=[0-9A-F]{2}|[^=]")


def _qp(text: str) -> bytes:
    """Quoted-printable (RFC 2045) of ``\\n``-terminated text, with CRLF line endings; lines <= 76."""
    raw = text.encode("utf-8")
    out = binascii.b2a_qp(raw, istext=True)
    if b" \n" in raw or b"\t\n" in raw or raw.endswith((b" ", b"\t")):
        out = _rewrap_qp(out)  # b2a_qp lets a line ending in encoded whitespace reach 78 characters
    return out.replace(b"\n", b"\r\n")


def _rewrap_qp(encoded: bytes) -> bytes:
    lines = encoded.split(b"\n")
    for n, line in enumerate(lines):
        if len(line) <= 76:
            continue
        soft = line.endswith(b"=") and not line.endswith(b"==")  # "==" cannot end a b2a_qp line
        tokens = _QP_TOKEN.findall(line[:-1] if soft else line)
        pieces: list[bytes] = []
        cur = b""
        for tok in tokens:
            if len(cur) + len(tok) > 75:
                pieces.append(cur + b"=")
                cur = b""
            cur += tok
        if cur == b".":
            cur = b"=2E"  # never leave a lone dot on a line
        pieces.append(cur + b"=" if soft else cur)
        lines[n] = b"\n".join(pieces)
    return b"\n".join(lines)


def _is_7bit_safe(s: str) -> bool:
    return (
        s.isascii()
        and not s.encode("ascii").translate(None, _7BIT_TEXT)  # no controls besides tab and newline
        and max(map(len, s.split("\n"))) <= 78
        and "\n.\n" not in s
        and not s.startswith(".\n")
    )


def _text_part(content: str, subtype: str) -> tuple[str, bytes]:
    """(part headers, body bytes) of a text/<subtype> part; 7bit when safe, else quoted-printable."""
    if not isinstance(content, str):
        raise TypeError(f"text/{subtype} body must be str")
    s = _normalize_newlines(content)
    if s and not s.endswith("\n"):
        s += "\n"
    if _is_7bit_safe(s):
        return (
            f"Content-Type: text/{subtype}; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n",
            s.replace("\n", "\r\n").encode("ascii"),
        )
    return (
        f"Content-Type: text/{subtype}; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n",
        _qp(s),
    )


def _new_boundary() -> str:
    # "=_" cannot occur in quoted-printable or base64 output; 7bit parts are checked by _multipart.
    return "=_pd" + secrets.token_hex(12)


def _multipart(subtype: str, parts: Sequence[tuple[str, bytes]]) -> tuple[str, bytes]:
    while True:
        boundary = _new_boundary()
        bb = boundary.encode("ascii")
        if not any(bb in body for _, body in parts):
            break
    # Each delimiter brings its own leading CRLF, so a part's content keeps its final line break.
    out = []
    for headers, body in parts:
        out += (b"--", bb, b"\r\n", headers.encode("ascii"), b"\r\n", body, b"\r\n")
    out += (b"--", bb, b"--\r\n")
    return f'Content-Type: multipart/{subtype};\r\n boundary="{boundary}"\r\n', b"".join(out)


# ----------------------------------------------------------------------------------------- attachments

_TOKEN = r"[!#$%&'*+.^_`|~0-9a-z-]+"
_MIME_TYPE = re.compile(rf"({_TOKEN})/({_TOKEN})\Z")
_CHARSET_PARAM = re.compile(r';\s*charset\s*=\s*"?([A-Za-z0-9._:-]{1,40})"?', re.I)
_QUOTABLE_PARAM = re.compile(r"[ !#-\[\]-~]{1,60}\Z")  # printable ASCII without " and \
_ATTR_SAFE = "!#$&+^`|~"  # RFC 2231 attribute-char beyond quote()'s always-safe ALPHA DIGIT _ . - ~
_PARAM_CHUNK = 60


def _content_type(field: str, content_type: str) -> list[str]:
    """Header atoms for an attachment's Content-Type: ``["type/subtype;"]`` (+ ``"charset=x;"`` for text).

    Unknown or malformed types become application/octet-stream, and so do multipart/* and message/*,
    which may not be base64-encoded (RFC 2046 5.2.1); the filename keeps telling clients what it is.
    """
    validate_header_value(field, content_type or "")
    main, _, params = (content_type or "").partition(";")
    main = main.strip().lower()
    m = _MIME_TYPE.match(main)
    if m is None or m.group(1) in ("multipart", "message"):
        return ["application/octet-stream;"]
    if m.group(1) == "text":
        cs = _CHARSET_PARAM.search(";" + params)
        if cs:
            return [main + ";", f"charset={cs.group(1).lower()};"]
    return [main + ";"]


def _filename(field: str, filename: str) -> str:
    validate_header_value(field, filename or "")
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip(" \t")
    if name in ("", ".", ".."):
        return "attachment"
    return name


def _param_atoms(pname: str, value: str) -> list[str]:
    """``pname="value"`` or RFC 2231 ``pname*=utf-8''...`` (with ``*0*``, ``*1*`` continuations when long,
    each on a line of at most 78); every atom but the last ends with ";" so the list can follow "type;"."""
    if _QUOTABLE_PARAM.match(value):
        return [f'{pname}="{value}"']
    pct = _pct_quote(value, safe=_ATTR_SAFE, encoding="utf-8")
    if len(pct) <= _PARAM_CHUNK:
        return [f"{pname}*=utf-8''{pct}"]
    atoms = []
    i = 0
    while i < len(pct):
        prefix = f"{pname}*{len(atoms)}*=" + ("utf-8''" if not atoms else "")
        j = i + max(77 - len(prefix) - 1, 12)  # " " + prefix + chunk + ";" <= 78
        if j >= len(pct):
            j = len(pct)
        else:
            k = pct.rfind("%", j - 2, j)  # never split a %XX triplet
            if k != -1:
                j = k
            while j - 3 > i and pct[j] == "%" and int(pct[j + 1 : j + 3], 16) & 0xC0 == 0x80:
                j -= 3  # nor a UTF-8 sequence: some clients decode each segment on its own
        atoms.append(f"{prefix}{pct[i:j]};")
        i = j
    atoms[-1] = atoms[-1][:-1]
    return atoms


def _attachment_part(attachment: Sequence) -> tuple[str, bytes]:
    filename, content_type, data = attachment
    name = _filename("attachment filename", filename)
    ctype_atoms = _content_type("attachment content type", content_type)
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("attachment content must be bytes")
    headers = (
        _fold("Content-Type", [*ctype_atoms, *_param_atoms("name", name)])
        + "Content-Transfer-Encoding: base64\r\n"
        + _fold("Content-Disposition", ["attachment;", *_param_atoms("filename", name)])
    )
    return headers, base64.encodebytes(bytes(data)).replace(b"\n", b"\r\n")


# ------------------------------------------------------------------------------------------ one message


def _destination_headers(to: Sequence, cc: Sequence) -> str:
    if not to and not cc:
        return "To: undisclosed-recipients:;\r\n"
    out = ""
    if to:
        out += _address_header("To", to)
    if cc:
        out += _address_header("Cc", cc)
    return out


def build_message(
    *,
    from_address: str,
    from_name: str | None = "",
    to: Sequence[str | tuple[str, str]],
    cc: Sequence[str | tuple[str, str]] = (),
    reply_to: str | tuple[str, str] | None = None,
    subject: str,
    text: str,
    html: str | None = None,
    message_id: str,
    date: datetime,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    headers: Mapping[str, str] | None = None,
    attachments: Sequence[tuple[str, str, bytes]] = (),
) -> bytes:
    """One complete RFC 5322 message as bytes (CRLF, lines <= 998, 7bit/quoted-printable/base64 bodies).

    ``to``/``cc``/``reply_to`` entries are bare addresses or ``(display name, address)`` pairs. ``html``
    makes a multipart/alternative; ``attachments`` (filename, content type, bytes) a multipart/mixed.
    ``headers`` are extra fields (Auto-Submitted, List-Unsubscribe, X-Postdesk-Id, ...); builder-owned
    fields (From, To, Bcc, Content-*, ...) are refused there. Malformed ``in_reply_to``/``references`` ids
    from inbound mail are dropped; References keeps the root and the 19 most recent.
    Raises ``HeaderInjectionError`` (a ValueError) for CR/LF/controls or a bad address anywhere in a header.
    """
    head = [
        _address_header("From", [(from_name or "", from_address)]),
        _destination_headers(to, cc),
    ]
    if reply_to:
        head.append(_address_header("Reply-To", [reply_to]))
    validate_header_value("Subject", subject)
    head.append(_unstructured("Subject", subject))
    head.append(f"Date: {format_date(date)}\r\n")
    head.append(f"Message-ID: {_message_id('Message-ID', message_id)}\r\n")
    if in_reply_to:
        irt = _loose_message_id("In-Reply-To", in_reply_to)
        if irt:
            head.append(f"In-Reply-To: {irt}\r\n")
    if references:
        refs = _references(references)
        if refs:
            head.append(_fold("References", refs))
    head.append("MIME-Version: 1.0\r\n")
    head.append(_extra_headers(headers))

    part_headers, body = _text_part(text, "plain")
    if html is not None:
        part_headers, body = _multipart("alternative", [(part_headers, body), _text_part(html, "html")])
    if attachments:
        parts = [(part_headers, body)]
        parts.extend(_attachment_part(a) for a in attachments)
        part_headers, body = _multipart("mixed", parts)
    head.append(part_headers)
    head.append("\r\n")
    return "".join(head).encode("ascii") + body


# ------------------------------------------------------------------------------------------ HTML scanning

_MARKUP = re.compile(r"<(?:(!--)|([A-Za-z][^\s/>]*))")
_ATTR = re.compile(r"""[\s/]*(?:(>)|([^\s/>][^\s/>=]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]*)))?)""")
_RAW_TEXT_END = {
    "script": re.compile(r"</script", re.I),
    "style": re.compile(r"</style", re.I),
    "textarea": re.compile(r"</textarea", re.I),
    "title": re.compile(r"</title", re.I),
}


class HtmlTag:
    """A start tag found by ``iter_html_tags``: name, its span, and its attributes' value spans."""

    __slots__ = ("name", "start", "end", "attrs", "raw_end")

    def __init__(self, name: str, start: int, end: int, attrs: list[tuple[str, int, int, str]], raw_end: int):
        self.name = name  # lower case
        self.start = start
        self.end = end  # just after ">"
        self.attrs = attrs  # (lower-case name, value start, value end, quote char or "" or None for no value)
        self.raw_end = raw_end  # for script/style/textarea/title: where the raw text ends; else == end


def iter_html_tags(html: str):
    """Yield each start tag of ``html`` as an ``HtmlTag``, in one linear pass, the way browsers tokenise:
    comments and the raw text of script/style/textarea/title are skipped, quoted values may hold ">".
    Stops at an unterminated tag."""
    pos = 0
    while True:
        m = _MARKUP.search(html, pos)
        if m is None:
            return
        if m.group(1):
            end = html.find("-->", m.end())
            if end == -1:
                return
            pos = end + 3
            continue
        name = m.group(2).lower()
        attrs: list[tuple[str, int, int, str]] = []
        p = m.end()
        while True:
            a = _ATTR.match(html, p)
            if a is None:
                return  # unterminated tag at the end of the document
            if a.group(1):
                break
            for group, quote in ((3, '"'), (4, "'"), (5, "")):
                if a.group(group) is not None:
                    attrs.append((a.group(2).lower(), a.start(group), a.end(group), quote))
                    break
            else:
                attrs.append((a.group(2).lower(), a.end(), a.end(), None))
            p = a.end()
        end = a.end()
        raw_end = end
        closing = _RAW_TEXT_END.get(name)
        if closing is not None:
            c = closing.search(html, end)
            raw_end = c.start() if c else len(html)
        yield HtmlTag(name, m.start(), end, attrs, raw_end)
        pos = raw_end


def _check_html_template(html: str) -> frozenset[str]:
    """Refuse fields where escaping is not enough; return the fields that start a URL attribute."""
    url_fields: set[str] = set()
    for tag in iter_html_tags(html):
        if "{{" not in html[tag.start : tag.raw_end]:
            continue
        outside = []
        p = tag.start
        for name, vs, ve, quote in tag.attrs:
            if quote:
                outside.append(html[p : vs - 1])
                p = ve + 1
                if name in _URL_ATTRS:
                    m = _LEADING_PLACEHOLDER.match(html, vs, ve)
                    if m:
                        url_fields.add(m.group(1))
        outside.append(html[p : tag.end])
        if _PLACEHOLDER.search("".join(outside)):
            raise ValueError(
                f"a {{{{ field }}}} in <{tag.name}> outside a quoted attribute value: quote the attribute value"
            )
        if tag.name in ("script", "style") and _PLACEHOLDER.search(html, tag.end, tag.raw_end):
            raise ValueError(f"a {{{{ field }}}} inside <{tag.name}>: fields are not allowed there")
    return frozenset(url_fields)


# ------------------------------------------------------------------------------------- mass mail templates

_PLACEHOLDER = re.compile(r"\{\{[ \t]*([A-Za-z_][A-Za-z0-9_.-]*)[ \t]*\}\}")
_LEADING_PLACEHOLDER = re.compile(r"[ \t\r\n]*\{\{[ \t]*([A-Za-z_][A-Za-z0-9_.-]*)[ \t]*\}\}")
_URL_ATTRS = frozenset({"href", "src", "action", "background", "formaction", "poster"})
_SAFE_URL_VALUE = re.compile(r"(?:https?://|mailto:)[^\s\"'<>`\x00-\x1f\x7f]*\Z", re.I)

# A dynamic body chunk: (segments, is_html). segments alternate literal text and field names, like the
# output of re.split() with one capturing group: [lit, name, lit, name, ..., lit].
_Chunk = tuple[list[str], bool]


def _prepared_text_part(template: str, subtype: str, is_html: bool) -> tuple[str, list[bytes | _Chunk]]:
    """Part headers and body pieces: static runs of lines as encoded bytes, lines with fields as chunks.

    Quoted-printable is line-local, so encoding line runs separately gives the same bytes as encoding
    the whole rendered body at once.
    """
    s = _normalize_newlines(template)
    if s and not s.endswith("\n"):
        s += "\n"
    headers = (
        f"Content-Type: text/{subtype}; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n"
    )
    pieces: list[bytes | _Chunk] = []
    static: list[str] = []
    dynamic: list[str] = []

    def flush_static():
        if static:
            pieces.append(_qp("".join(static)))
            static.clear()

    def flush_dynamic():
        if dynamic:
            pieces.append((_PLACEHOLDER.split("".join(dynamic)), is_html))
            dynamic.clear()

    for line in _lines(s):
        if "{{" in line and _PLACEHOLDER.search(line):
            flush_static()
            dynamic.append(line)
        else:
            flush_dynamic()
            static.append(line)
    flush_static()
    flush_dynamic()
    return headers, pieces


def _lines(s: str) -> list[str]:
    """``s`` split after each "\\n" only (str.splitlines() also splits on \\x0b, \\x85, U+2028...)."""
    lines = [line + "\n" for line in s.split("\n")]
    lines[-1] = lines[-1][:-1]
    if not lines[-1]:
        lines.pop()
    return lines


def _prepared_multipart(subtype: str, parts: list[tuple[str, list]]) -> tuple[str, list]:
    # Prepared parts are quoted-printable or base64, which never contain "=_": no collision check needed.
    bb = _new_boundary().encode("ascii")
    pieces: list = []
    for headers, body in parts:
        pieces.append(b"--" + bb + b"\r\n" + headers.encode("ascii") + b"\r\n")
        pieces += body
        pieces.append(b"\r\n")
    pieces.append(b"--" + bb + b"--\r\n")
    return f'Content-Type: multipart/{subtype};\r\n boundary="{bb.decode()}"\r\n', pieces


class PreparedMessage:
    """A mass-mail message encoded once, rendered per recipient by substitution into the prepared MIME.

    ``render(recipient, fields, message_id, extra_headers)`` returns the message bytes for one recipient.
    Field values are encoded for where they land: RFC 2047 in the Subject (CR/LF refused), HTML-escaped in
    the HTML part (and, where a field starts an href/src, required to be an http(s) or mailto URL), and
    quoted-printable in both bodies. A field missing from ``fields`` renders as "".
    """

    __slots__ = (
        "_head",
        "_subject",
        "_tail",
        "_body",
        "_url_fields",
        "_text_names",
        "_html_names",
        "field_names",
    )

    def __init__(self, head: bytes, subject: str | list[str], tail: bytes, body: list, url_fields: frozenset):
        self._head = head  # From, Reply-To: before To
        self._subject = subject  # the encoded Subject line, or segments to render
        self._tail = tail  # MIME-Version, static extra headers
        self._url_fields = url_fields
        # body: bytes, or (segments, field names at the odd positions, is_html) for lines with fields
        self._body: list = []
        text_names: set[str] = set()
        html_names: set[str] = set()
        for piece in body:
            if type(piece) is bytes:
                self._body.append(piece)
            else:
                segs, is_html = piece
                (html_names if is_html else text_names).update(segs[1::2])
                self._body.append((segs, segs[1::2], is_html))
        self._text_names = frozenset(text_names)
        self._html_names = frozenset(html_names)
        subject_names = set(subject[1::2]) if isinstance(subject, list) else set()
        self.field_names = frozenset(subject_names | text_names | html_names)

    def render(
        self,
        recipient: str | tuple[str, str],
        fields: Mapping[str, object],
        message_id: str,
        extra_headers: Mapping[str, str] | None = None,
        *,
        date: datetime | None = None,
    ) -> bytes:
        values: dict[str, str] = {}
        for name in self.field_names:
            v = fields.get(name, "")
            values[name] = v if type(v) is str else str(v)

        head = [_address_header("To", [recipient])]
        subject = self._subject
        if type(subject) is str:
            head.append(subject)
        else:
            segs = subject.copy()
            segs[1::2] = [validate_header_value(name, values[name]) for name in segs[1::2]]
            head.append(_unstructured("Subject", "".join(segs)))
        head.append(f"Date: {format_date(date) if date is not None else _date_now()}\r\n")
        head.append(f"Message-ID: {_message_id('Message-ID', message_id)}\r\n")
        if extra_headers:
            head.append(_extra_headers(extra_headers))

        # Literals were normalised to "\n" when prepared, values are now: each keeps its own line breaks.
        text_values = {}
        for name in self._text_names:
            v = values[name]
            text_values[name] = _normalize_newlines(v) if "\r" in v else v
        html_values = {}
        for name in self._html_names:
            v = values[name]
            if name in self._url_fields and v and not _SAFE_URL_VALUE.match(v.strip()):
                raise ValueError(f"field {name!r} is used as a link and must be an http(s) or mailto URL")
            v = html_lib.escape(v, quote=True)
            html_values[name] = _normalize_newlines(v) if "\r" in v else v

        out = [self._head, "".join(head).encode("ascii"), self._tail]
        for piece in self._body:
            if type(piece) is bytes:
                out.append(piece)
                continue
            segs, names, is_html = piece
            table = html_values if is_html else text_values
            segs = segs.copy()
            segs[1::2] = [table[name] for name in names]
            out.append(_qp("".join(segs)))
        return b"".join(out)


def prepare_template(
    *,
    from_address: str,
    from_name: str | None = "",
    subject_template: str,
    text_template: str,
    html_template: str | None = None,
    headers: Mapping[str, str] | None = None,
    reply_to: str | tuple[str, str] | None = None,
    attachments: Sequence[tuple[str, str, bytes]] = (),
) -> PreparedMessage:
    """Encode a mass-mail template once. Fields are written ``{{ name }}`` in the subject and both bodies.

    ``headers`` are static extra headers for every recipient; per-recipient ones (List-Unsubscribe with the
    recipient's token) go to ``render(extra_headers=...)``. HTML placeholders inside an unquoted attribute
    value are refused (an escaped value could still add attributes there).
    """
    head = _address_header("From", [(from_name or "", from_address)])
    if reply_to:
        head += _address_header("Reply-To", [reply_to])
    validate_header_value("Subject", subject_template)
    subject_segs = _PLACEHOLDER.split(subject_template)
    subject: str | list[str] = (
        subject_segs if len(subject_segs) > 1 else _unstructured("Subject", subject_template)
    )
    tail = "MIME-Version: 1.0\r\n" + _extra_headers(headers)

    text_headers, text_pieces = _prepared_text_part(text_template, "plain", False)
    url_fields: frozenset[str] = frozenset()
    part_headers, pieces = text_headers, text_pieces
    if html_template is not None:
        url_fields = _check_html_template(html_template)
        html_part = _prepared_text_part(html_template, "html", True)
        part_headers, pieces = _prepared_multipart("alternative", [(text_headers, text_pieces), html_part])
    if attachments:
        parts = [(part_headers, pieces)]
        parts += [(h, [b]) for h, b in map(_attachment_part, attachments)]
        part_headers, pieces = _prepared_multipart("mixed", parts)
    body: list = [part_headers.encode("ascii") + b"\r\n"]
    for p in pieces:  # merge adjacent static bytes
        if type(p) is bytes and body and type(body[-1]) is bytes:
            body[-1] += p
        else:
            body.append(p)
    return PreparedMessage(head.encode("ascii"), subject, tail.encode("ascii"), body, url_fields)
