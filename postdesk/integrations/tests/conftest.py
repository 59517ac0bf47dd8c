"""Fixtures of the integration tests: a real webhook receiver on 127.0.0.1 (http.server in a thread) that checks every
signature and records every arrival, the switch that lets webhooks reach it (POSTDESK_ALLOW_PRIVATE_WEBHOOKS), and
a ticketing cast built through the real services."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.conf import settings

SECRET = "receiver-secret-0123456789"


@dataclasses.dataclass
class Arrival:
    path: str
    event: str
    delivery: int
    body: dict
    raw: bytes
    headers: dict
    answered: int
    signature_ok: bool


class Receiver:
    """Answers `status` (200 unless told otherwise; per path in `statuses`), checks X-Postdesk-Signature with the
    secret of the path, records every request in `arrivals` and the ones it accepted in `accepted`."""

    def __init__(self, tls: tuple | None = None):
        self.scheme = "https" if tls else "http"
        self.secrets: dict[str, str] = {}
        self.status = 200
        self.delay = 0.0  # seconds to wait before answering
        self.statuses: dict[str, int] = {}
        self.headers_out: dict[str, str] = {}
        self.arrivals: list[Arrival] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = receiver.statuses.get(self.path, receiver.status)
                if receiver.delay:
                    import time

                    time.sleep(receiver.delay)
                ok = receiver.verify(self.path, self.headers.get("X-Postdesk-Signature", ""), raw)
                with receiver.lock:
                    receiver.arrivals.append(
                        Arrival(
                            path=self.path,
                            event=self.headers.get("X-Postdesk-Event", ""),
                            delivery=int(self.headers.get("X-Postdesk-Delivery", "0")),
                            body=json.loads(raw),
                            raw=raw,
                            headers=dict(self.headers),
                            answered=status,
                            signature_ok=ok,
                        )
                    )
                self.send_response(status)
                for name, value in receiver.headers_out.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls:
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/hook", secret: str = SECRET) -> str:
        self.secrets[path] = secret
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def verify(self, path: str, header: str, raw: bytes) -> bool:
        parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        secret = self.secrets.get(path)
        if not secret or "t" not in parts or "v1" not in parts:
            return False
        expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + raw, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, parts["v1"])

    @property
    def accepted(self) -> list[Arrival]:
        return [a for a in self.arrivals if 200 <= a.answered < 300]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


@pytest.fixture
def allow_private(monkeypatch):
    """POSTDESK_ALLOW_PRIVATE_WEBHOOKS=1: the receiver on 127.0.0.1 may be a target."""
    monkeypatch.setattr(settings, "CONFIG", dataclasses.replace(settings.CONFIG, allow_private_webhooks=True))


@pytest.fixture
def hook(project, receiver, allow_private):
    """One endpoint of project 101 on the receiver, subscribed to everything."""
    from postdesk.integrations.services import create_webhook

    endpoint, _ = create_webhook(
        project, url=receiver.url("/hook"), events=["email", "ticket"], secret=SECRET
    )
    return endpoint
