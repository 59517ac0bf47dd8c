"""SMTP connections to sender accounts: one shared SSLContext per verification setting, pooled connections per
account (reused with RSET, checked with NOOP when idle), and AUTH LOGIN / PLAIN / XOAUTH2."""

from __future__ import annotations

import functools
import queue
import smtplib
import ssl
import threading
import time
from dataclasses import dataclass

IDLE_CHECK_SECONDS = 30
CONNECT_TIMEOUT = 30
MAX_REPLY_BYTES = 65536  # a reply longer than this is not an SMTP server talking


class SmtpError(Exception):
    """A failure talking to the relay. `permanent` (5xx) means do not retry; `account_error` means the account's own
    settings are wrong (credentials refused, certificate not trusted, no STARTTLS or AUTH offered)."""

    def __init__(
        self, message: str, *, code: int | None = None, permanent: bool = False, account_error: bool = False
    ):
        super().__init__(message)
        self.code = code
        self.permanent = permanent
        self.account_error = account_error


@functools.lru_cache(maxsize=16)
def ssl_context(verify: bool = True, ca_file: str = "") -> ssl.SSLContext:
    """One SSLContext per (verify, ca_file), shared by every connection (loading CA certificates is expensive)."""
    context = ssl.create_default_context(cafile=ca_file or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    security: str  # starttls | tls | none
    auth: str  # login | plain | xoauth2 | none
    username: str
    tls_verify: bool
    ca_file: str
    local_hostname: str | None = None


def _reply(exc: smtplib.SMTPResponseException) -> str:
    text = (
        exc.smtp_error.decode("utf-8", "replace")
        if isinstance(exc.smtp_error, bytes)
        else str(exc.smtp_error)
    )
    return f"{exc.smtp_code} {text}".strip()


class Connection:
    def __init__(self, endpoint: Endpoint, secret: str):
        self.endpoint = endpoint
        self.used_at = time.monotonic()
        e = endpoint
        try:
            if e.security == "tls":
                self.smtp = smtplib.SMTP_SSL(
                    e.host,
                    e.port,
                    timeout=CONNECT_TIMEOUT,
                    local_hostname=e.local_hostname,
                    context=ssl_context(e.tls_verify, e.ca_file),
                )
            else:
                self.smtp = smtplib.SMTP(
                    e.host, e.port, timeout=CONNECT_TIMEOUT, local_hostname=e.local_hostname
                )
            self.smtp.ehlo()
            if e.security == "starttls":
                if not self.smtp.has_extn("starttls"):
                    raise SmtpError(
                        f"{e.host}:{e.port} does not offer STARTTLS", permanent=True, account_error=True
                    )
                self.smtp.starttls(context=ssl_context(e.tls_verify, e.ca_file))
                self.smtp.ehlo()
            self._authenticate(secret)
        except SmtpError:
            self.close()
            raise
        except smtplib.SMTPAuthenticationError as exc:
            self.close()
            raise SmtpError(
                f"authentication failed: {_reply(exc)}",
                code=exc.smtp_code,
                account_error=True,
                permanent=True,
            )
        except smtplib.SMTPResponseException as exc:
            self.close()
            raise SmtpError(_reply(exc), code=exc.smtp_code, permanent=500 <= exc.smtp_code < 600)
        except ssl.SSLCertVerificationError as exc:
            self.close()
            raise SmtpError(
                f"TLS certificate not trusted: {exc.verify_message}", permanent=True, account_error=True
            )
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            raise SmtpError(f"cannot connect to {e.host}:{e.port}: {exc}")

    def _authenticate(self, secret: str) -> None:
        e = self.endpoint
        if e.auth == "none":
            return
        if not self.smtp.has_extn("auth"):
            raise SmtpError(
                f"{e.host} offers no AUTH (did you mean security: starttls?)",
                permanent=True,
                account_error=True,
            )
        if e.auth == "login":
            self._login(secret)
        elif e.auth == "plain":
            self.smtp.user, self.smtp.password = e.username, secret
            self.smtp.auth("PLAIN", self.smtp.auth_plain)
        elif e.auth == "xoauth2":
            token = f"user={e.username}\x01auth=Bearer {secret}\x01\x01"

            def xoauth2(challenge=None):
                return token if challenge is None else ""

            self.smtp.auth("XOAUTH2", xoauth2)

    def _login(self, secret: str) -> None:
        self.smtp.user, self.smtp.password = self.endpoint.username, secret
        self.smtp.auth("LOGIN", self.smtp.auth_login, initial_response_ok=False)

    def send(
        self, mail_from: str, recipients: list[str], data: bytes, on_data_start=None, on_data_refused=None
    ) -> tuple[dict, str]:
        """Send one message. Returns (refused recipients {addr: reply}, the server's final reply). Raises SmtpError.
        `on_data_start` is called after the server accepted DATA (354), just before the message is transmitted;
        `on_data_refused` when the server then answered the end of data with a refusal (the message certainly not
        accepted)."""
        smtp = self.smtp
        try:
            # addresses were validated when the email was queued; talk SMTP directly (smtplib's address quoting
            # parses every address again, and its line reader costs more than the rest of the exchange at
            # campaign rates)
            option = b" SMTPUTF8" if smtp.has_extn("smtputf8") and not data.isascii() else b""
            if not (mail_from.isascii() and all(r.isascii() for r in recipients)):
                if not smtp.has_extn("smtputf8"):
                    raise SmtpError("an address is not ASCII and the server does not offer SMTPUTF8",
                                    permanent=True)
                option = b" SMTPUTF8"
            code, resp = self._exchange(b"MAIL FROM:<" + mail_from.encode() + b">" + option + b"\r\n")
            if code != 250:
                smtp.rset()
                raise SmtpError(
                    f"MAIL FROM refused: {code} {resp.decode('utf-8', 'replace')}",
                    code=code,
                    permanent=500 <= code < 600,
                )
            refused = {}
            for rcpt in recipients:
                code, resp = self._exchange(b"RCPT TO:<" + rcpt.encode() + b">\r\n")
                if code not in (250, 251):
                    refused[rcpt] = (code, resp.decode("utf-8", "replace"))
            if len(refused) == len(recipients):
                smtp.rset()
                code, text = next(iter(refused.values()))
                raise SmtpError(
                    f"all recipients refused: {code} {text}",
                    code=code,
                    permanent=all(500 <= c < 600 for c, _ in refused.values()),
                )
            code, resp = self._exchange(b"DATA\r\n")
            if code != 354:
                smtp.rset()
                raise SmtpError(
                    f"DATA refused: {code} {resp.decode('utf-8', 'replace')}",
                    code=code,
                    permanent=500 <= code < 600,
                )
            if on_data_start is not None:
                on_data_start()
            payload = smtplib._quote_periods(data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
            if not payload.endswith(b"\r\n"):
                payload += b"\r\n"
            code, resp = self._exchange(payload + b".\r\n")
            text = f"{code} {resp.decode('utf-8', 'replace')}"
            if code != 250:
                if on_data_refused is not None and 400 <= code < 600:
                    on_data_refused()
                raise SmtpError(text, code=code, permanent=500 <= code < 600)
            self.used_at = time.monotonic()
            return {k: f"{c} {t}" for k, (c, t) in refused.items()}, text
        except SmtpError:
            raise
        except smtplib.SMTPServerDisconnected as exc:
            raise SmtpError(f"connection lost: {exc}")
        except smtplib.SMTPResponseException as exc:
            raise SmtpError(_reply(exc), code=exc.smtp_code, permanent=500 <= exc.smtp_code < 600)
        except (OSError, smtplib.SMTPException) as exc:
            raise SmtpError(f"connection error: {exc}")

    def _exchange(self, data: bytes) -> tuple[int, bytes]:
        """Send ``data`` (a command line, or the message with its end-of-data line) and read the server's one reply
        straight from the socket: (code, text with the lines joined by LF, as smtplib gives it). The server sends
        nothing unasked, so smtplib's own buffered reader (used for EHLO, RSET, NOOP, QUIT) never holds a byte of
        these replies."""
        sock = self.smtp.sock
        if sock is None:
            raise smtplib.SMTPServerDisconnected("please run connect() first")
        sock.sendall(data)
        reply = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                self.smtp.close()
                raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
            reply += chunk
            if reply.endswith(b"\n"):
                last = reply[reply.rfind(b"\n", 0, -1) + 1 :]
                if last[3:4] != b"-":  # "250 text", "250" alone, or a malformed line: the reply is complete
                    break
            if len(reply) > MAX_REPLY_BYTES:
                self.smtp.close()
                raise smtplib.SMTPResponseException(500, b"Line too long.")
        lines = reply.rstrip(b"\r\n").split(b"\n")
        code = lines[-1][:3]
        text = b"\n".join(line[4:].strip(b" \t\r\n") for line in lines)
        return (int(code) if code.isdigit() and len(code) == 3 else -1), text

    def alive(self) -> bool:
        if time.monotonic() - self.used_at < IDLE_CHECK_SECONDS:
            return True
        try:
            return self.smtp.noop()[0] == 250
        except (OSError, smtplib.SMTPException):
            return False

    def reset(self) -> bool:
        try:
            return self.smtp.rset()[0] == 250
        except (OSError, smtplib.SMTPException):
            return False

    def close(self) -> None:
        smtp = getattr(self, "smtp", None)
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            try:
                smtp.close()
            except OSError:
                pass


class Pool:
    """Idle connections per endpoint. `get` hands out an idle live one or opens a new one; `put` returns it."""

    def __init__(self, max_idle: int = 8):
        self.max_idle = max_idle
        self._idle: dict[tuple, queue.LifoQueue] = {}
        self._lock = threading.Lock()

    def _queue(self, key) -> queue.LifoQueue:
        with self._lock:
            return self._idle.setdefault(key, queue.LifoQueue())

    def get(self, endpoint: Endpoint, secret: str) -> Connection:
        key = (endpoint, secret)
        q = self._queue(key)
        while True:
            try:
                conn = q.get_nowait()
            except queue.Empty:
                return Connection(endpoint, secret)
            if conn.alive():
                return conn
            conn.close()

    def put(self, endpoint: Endpoint, secret: str, conn: Connection, healthy: bool = True) -> None:
        q = self._queue((endpoint, secret))
        if healthy and q.qsize() < self.max_idle and conn.reset():
            q.put(conn)
        else:
            conn.close()

    def clear(self) -> None:
        with self._lock:
            queues, self._idle = list(self._idle.values()), {}
        for q in queues:
            while not q.empty():
                q.get_nowait().close()


POOL = Pool()
