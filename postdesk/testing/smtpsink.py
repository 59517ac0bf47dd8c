"""A real SMTP server for tests (aiosmtpd on 127.0.0.1): records what it receives, can require STARTTLS and AUTH,
and can be told to answer with errors (451 twice then 250, 550, ...)."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes


@dataclass
class SinkState:
    messages: list[Received] = field(default_factory=list)
    data_replies: list[str] = field(
        default_factory=list
    )  # queued replies to DATA, consumed in order; then 250
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    auth_tokens: list[str] = field(default_factory=list)
    valid_tokens: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler:
    def __init__(self, state: SinkState):
        self.state = state

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.state.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.state.lock:
            if self.state.data_replies:
                return self.state.data_replies.pop(0)
            self.state.messages.append(
                Received(
                    envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or envelope.content
                )
            )
        return "250 2.0.0 Accepted"


class _OAuthHandler(_Handler):
    """Accepts AUTH XOAUTH2 with a bearer token from `state.valid_tokens`."""

    async def auth_XOAUTH2(self, server, args):
        import base64

        if len(args) < 2:
            return AuthResult(success=False, handled=False)
        try:
            decoded = base64.b64decode(args[1]).decode()
        except ValueError:
            return AuthResult(success=False, handled=False)
        fields = dict(part.split("=", 1) for part in decoded.split("\x01") if "=" in part)
        token = fields.get("auth", "").removeprefix("Bearer ")
        self.state.auth_tokens.append(token)
        return AuthResult(success=token in self.state.valid_tokens, handled=False)


def self_signed(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(host)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpSink:
    """`with SmtpSink() as sink:` ... `sink.port`, `sink.messages`."""

    def __init__(
        self, *, tls_folder: Path | None = None, users: dict[str, str] | None = None, oauth: bool = False
    ):
        self.state = SinkState()
        self.users = users
        self.port = free_port()
        self.cert = None
        kwargs = {}
        if tls_folder is not None:
            self.cert, key = self_signed(tls_folder)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.cert, key)
            kwargs.update(tls_context=context, require_starttls=True)
        if users is not None or oauth:
            kwargs.update(
                authenticator=self._authenticate, auth_required=True, auth_require_tls=tls_folder is not None
            )
        handler = _OAuthHandler(self.state) if oauth else _Handler(self.state)
        self.controller = Controller(
            handler, hostname="127.0.0.1", port=self.port, server_hostname="sink.test", **kwargs
        )

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword) and self.users is not None:
            user, password = auth_data.login.decode(), auth_data.password.decode()
            return AuthResult(success=self.users.get(user) == password, handled=False)
        return AuthResult(success=False, handled=False)

    @property
    def messages(self) -> list[Received]:
        return self.state.messages

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()
