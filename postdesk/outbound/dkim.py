"""DKIM (RFC 6376) keys and signing with ``cryptography``: rsa-sha256, relaxed/relaxed, t= and no l=.

Pure: the caller loads the domain's private key (stored encrypted, see ``postdesk.core.crypto``) and passes
the PEM. ``DkimSigner`` parses the key once; ``sign()`` costs one RSA signature plus two hashes.

Header selection follows RFC 6376 5.4.2: every instance of a signed field is listed (selected from the
bottom up), and the fields in ``oversigned_headers`` are listed once more than they occur, so that adding
another From, Subject, List-Unsubscribe, ... after signing breaks the signature (RFC 6376 8.15).
RFC 8058 one-click unsubscribe needs List-Unsubscribe and List-Unsubscribe-Post signed: both are defaults.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Iterable

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .compose import _domain_to_ascii

__all__ = [
    "DEFAULT_OVERSIGNED_HEADERS",
    "DEFAULT_SIGNED_HEADERS",
    "DkimSigner",
    "dns_txt_strings",
    "generate_dkim_key",
    "public_record",
]

DEFAULT_SIGNED_HEADERS = (
    "from",
    "sender",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "to",
    "cc",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "in-reply-to",
    "references",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "auto-submitted",
    "feedback-id",
)
DEFAULT_OVERSIGNED_HEADERS = (
    "from",
    "sender",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "to",
    "cc",
    "list-unsubscribe",
    "list-unsubscribe-post",
)

_SELECTOR = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\Z"
)
_HEADER_NAME = re.compile(r"[!-9;-~]+\Z")
# Runs of WSP that relaxed canonicalisation changes: two or more characters, or a lone tab (a lone space
# already is what a run becomes, and rewriting every space would cost most of the signing time).
_WSP_RUN = re.compile(rb" [ \t]+|\t[ \t]*")
_WSP_EOL = re.compile(rb"[ \t]+\r\n")
_BARE_EOL = re.compile(rb"\r\n|\r|\n")
_MIN_BITS = 1024
_BH_CHARS = 44  # base64 of a SHA-256 digest


def generate_dkim_key(bits: int = 2048) -> tuple[bytes, str]:
    """A new RSA key pair: (unencrypted PKCS#8 PEM private key, DNS TXT value ``v=DKIM1; k=rsa; p=...``).

    Store the PEM encrypted (``postdesk.core.crypto``); publish the record at ``<selector>._domainkey.<domain>``
    (split it with ``dns_txt_strings`` where a zone wants 255-octet strings).
    """
    if bits < 2048:
        raise ValueError("DKIM keys are generated with at least 2048 bits")
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem, _record_for(key.public_key())


def _record_for(public_key: rsa.RSAPublicKey) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode("ascii")


def _load_key(private_pem: bytes | str, password: bytes | None) -> rsa.RSAPrivateKey:
    if isinstance(private_pem, str):
        private_pem = private_pem.encode("ascii")
    key = serialization.load_pem_private_key(private_pem, password=password)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("DKIM key must be an RSA private key")
    if key.key_size < _MIN_BITS:
        raise ValueError(f"DKIM RSA key has {key.key_size} bits; verifiers refuse fewer than {_MIN_BITS}")
    return key


def public_record(private_pem: bytes | str, password: bytes | None = None) -> str:
    """The DNS TXT value (``v=DKIM1; k=rsa; p=...``) that publishes the public half of ``private_pem``."""
    return _record_for(_load_key(private_pem, password).public_key())


def dns_txt_strings(record: str, size: int = 255) -> list[str]:
    """``record`` cut into character-strings of at most 255 octets, as one TXT record needs them."""
    return [record[i : i + size] for i in range(0, len(record), size)] or [""]


# ----------------------------------------------------------------------------------------- canonicalisation


def relaxed_header(name: bytes, value: bytes) -> bytes:
    """RFC 6376 3.4.2: lower-case name, unfolded value, WSP runs as one SP, no WSP around the colon or at
    the end; ``value`` is everything after the colon (continuation lines included)."""
    if b"\r\n" in value:
        value = value.replace(b"\r\n", b"")
    if b"\t" in value or b"  " in value:
        value = _WSP_RUN.sub(b" ", value)
    return name.strip(b" \t").lower() + b":" + value.strip(b" \t") + b"\r\n"


def relaxed_body(body: bytes) -> bytes:
    """RFC 6376 3.4.4 on a CRLF body: no WSP at line ends, WSP runs as one SP, no trailing empty lines,
    a non-empty body ends with CRLF, and an empty one stays empty."""
    if not body:
        return b""
    if b" \r\n" in body or b"\t\r\n" in body:
        body = _WSP_EOL.sub(b"\r\n", body)
    if b"\t" in body or b"  " in body:
        body = _WSP_RUN.sub(b" ", body)
    if body.endswith(b" "):  # a last line without CRLF
        body = body[:-1]
    body = body.rstrip(b"\r\n")
    return body + b"\r\n" if body else b""


def _split_message(message: bytes) -> tuple[list[tuple[bytes, bytes]], bytes, bytes]:
    """(fields as (name, raw value after ":" with continuations), header block, body) of a CRLF message."""
    if message.startswith(b"\r\n"):
        raise ValueError("message has no header fields")
    end = message.find(b"\r\n\r\n")
    if end == -1:
        block = message[:-2] if message.endswith(b"\r\n") else message
        body = b""
        block_len = len(message)
    else:
        block = message[:end]
        body = message[end + 4 :]
        block_len = end + 2
    fields: list[tuple[bytes, bytes]] = []
    for line in block.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if not fields:
                raise ValueError("message starts with a continuation line")
            name, value = fields[-1]
            fields[-1] = (name, value + b"\r\n" + line)
            continue
        name, colon, value = line.partition(b":")
        if not colon:
            raise ValueError(f"header line without a colon: {line[:40]!r}")
        fields.append((name, value))
    return fields, message[:block_len], body


class DkimSigner:
    """Signs messages for one domain and selector; the RSA key is parsed once, here.

    ``sign(message)`` returns the message with a ``DKIM-Signature`` field prepended. The message is expected
    with CRLF line endings (``compose`` makes them); bare CR/LF are normalised to CRLF first and a missing
    final CRLF is added, as SMTP will do anyway, so that what is signed is what is sent.
    """

    def __init__(
        self,
        private_pem: bytes | str,
        domain: str,
        selector: str,
        signed_headers: Iterable[str] = DEFAULT_SIGNED_HEADERS,
        oversigned_headers: Iterable[str] = DEFAULT_OVERSIGNED_HEADERS,
        *,
        password: bytes | None = None,
    ):
        self._key = _load_key(private_pem, password)
        self._padding = padding.PKCS1v15()
        self._hash = hashes.SHA256()
        self.domain = _domain_to_ascii(domain.strip().rstrip("."))
        if not _SELECTOR.match(selector):
            raise ValueError(f"DKIM selector {selector!r} is not a valid DNS name")
        self.selector = selector
        signed = []
        for name in signed_headers:
            name = name.strip().lower()
            if not _HEADER_NAME.match(name):
                raise ValueError(f"{name!r} is not a header field name")
            if name not in signed:
                signed.append(name)
        if "from" not in signed:
            raise ValueError("DKIM signatures must cover From (RFC 6376 5.4)")
        self.signed_headers = tuple(signed)
        self.oversigned_headers = frozenset(h.strip().lower() for h in oversigned_headers)
        self._signed = [
            (name, name.encode("ascii"), name in self.oversigned_headers) for name in self.signed_headers
        ]
        self._signed_bytes = frozenset(b for _, b, _ in self._signed)
        self._h_cache: dict[tuple[str, ...], list[str]] = {}  # messages of one shape share their h= list
        self._head_cache: dict[tuple, tuple[str, bytes]] = {}
        self._prefix_atoms = (
            f"v=1; a=rsa-sha256; c=relaxed/relaxed; d={self.domain}; s={self.selector};".split(" ")
        )

    def sign(self, message: bytes, *, timestamp: int | None = None) -> bytes:
        """The message with a DKIM-Signature field prepended (relaxed/relaxed, rsa-sha256, t=, no l=)."""
        if not isinstance(message, bytes | bytearray):
            raise TypeError("message must be bytes")
        message = bytes(message)
        if message.count(b"\n") != message.count(b"\r\n") or message.count(b"\r") != message.count(b"\r\n"):
            message = _BARE_EOL.sub(b"\r\n", message)
        fields, block, body = _split_message(message)
        if body and not body.endswith(b"\r\n"):
            body += b"\r\n"
            message = block + b"\r\n" + body
        elif not body and not block.endswith(b"\r\n"):
            message = block + b"\r\n"

        # RFC 6376 5.4.2: instances are selected from the bottom; each listed name takes the next one up.
        instances: dict[bytes, list[bytes]] = {}
        for name, value in fields:
            lname = name.strip(b" \t").lower()
            if lname in self._signed_bytes:
                instances.setdefault(lname, []).append(relaxed_header(name, value))
        if b"from" not in instances:
            raise ValueError("message has no From header field")
        h_names: list[str] = []
        hashed: list[bytes] = []
        for name, name_bytes, oversign in self._signed:
            found = instances.get(name_bytes)
            if found:
                for canonical in reversed(found):
                    h_names.append(name)
                    hashed.append(canonical)
            if oversign:
                h_names.append(name)  # names a field that is absent: contributes nothing, forbids adding one
        h_key = tuple(h_names)
        h_atoms = self._h_cache.get(h_key)
        if h_atoms is None:
            h_atoms = _fold_list("h=", h_names)
            if len(self._h_cache) < 256:
                self._h_cache[h_key] = h_atoms

        bh = base64.b64encode(hashlib.sha256(relaxed_body(body)).digest()).decode("ascii")
        t = int(time.time()) if timestamp is None else int(timestamp)
        head, canonical_head = self._head(t, h_key, h_atoms)
        header = f"{head}bh={bh};\r\n b="  # "b=" always starts a line of its own (see _fold_tags)
        hashed.append(canonical_head + b"bh=" + bh.encode("ascii") + b"; b=")
        signature = self._key.sign(b"".join(hashed), self._padding, self._hash)
        b64 = base64.b64encode(signature).decode("ascii")
        folded_b = "\r\n ".join(b64[i : i + 72] for i in range(0, len(b64), 72))
        # The header ends with " b=" on its own line, so the first chunk may follow it directly.
        return (header + folded_b + "\r\n").encode("ascii") + message


    def _head(self, t: int, h_key: tuple[str, ...], h_atoms: list[str]) -> tuple[str, bytes]:
        """The DKIM-Signature field up to its bh= tag: folded, and in relaxed canonical form. Messages signed in
        the same second with the same header list share it (a campaign's do), so it is built once per second.
        The relaxed form of the field is its tags joined by single spaces: _fold_tags only ever puts one space,
        or CRLF and one space, between tags that themselves hold no whitespace."""
        key = (t, h_key)
        cached = self._head_cache.get(key)
        if cached is None:
            atoms = [*self._prefix_atoms, f"t={t};", *h_atoms, "bh=" + "=" * _BH_CHARS + ";"]
            folded = _fold_tags("DKIM-Signature:", atoms)
            head = folded[: -len(atoms[-1])]  # the bh= tag is always as long: where it folds is known
            cached = (head, ("dkim-signature:" + " ".join(atoms[:-1]) + " ").encode("ascii"))
            if len(self._head_cache) >= 64:
                self._head_cache.clear()
            self._head_cache[key] = cached
        return cached


def _fold_list(prefix: str, names: list[str]) -> list[str]:
    """``h=a:b:c;`` as atoms that may be separated by folding whitespace (FWS is allowed around ":")."""
    atoms = []
    cur = prefix
    for i, name in enumerate(names):
        piece = name + (":" if i < len(names) - 1 else ";")
        if len(cur) + len(piece) > 70:
            atoms.append(cur)
            cur = ""
        cur += piece
    atoms.append(cur)
    return atoms


def _fold_tags(start: str, atoms: list[str]) -> str:
    out = [start]
    line = len(start)
    for atom in atoms:
        if line + 1 + len(atom) > 78 or atom == "b=":
            out.append("\r\n ")
            line = 1
        else:
            out.append(" ")
            line += 1
        out.append(atom)
        line += len(atom)
    return "".join(out)
