"""The real SMTP/LMTP listener for tests: started on 127.0.0.1 free ports in a background event loop."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

from postdesk.testing.smtpsink import free_port


class Listener:
    def __init__(self, smtp: bool = True, lmtp: bool = True, max_size: int | None = None):
        self.max_size = max_size
        self.smtp_port = free_port() if smtp else None
        self.lmtp_port = free_port() if lmtp else None
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.servers = []

    def __enter__(self):
        from postdesk.inbound import smtpd
        from postdesk.inbound.intake import IntakeWriter

        self.writer = IntakeWriter(self.loop)
        self.directory = smtpd.AccountDirectory(ttl=0.0)
        self.thread.start()
        future = asyncio.run_coroutine_threadsafe(
            smtpd.start_servers(
                ("127.0.0.1", self.smtp_port) if self.smtp_port else None,
                ("127.0.0.1", self.lmtp_port) if self.lmtp_port else None,
                self.writer,
                self.directory,
                max_size=self.max_size,
            ),
            self.loop,
        )
        self.servers = future.result(10)
        return self

    def __exit__(self, *exc):
        async def close():
            for server in self.servers:
                server.close()
                await server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.writer.stop()


def converse(port: int, chunks: list[bytes], timeout: float = 10.0) -> bytes:
    """Send raw bytes (each chunk after reading what the server said) and return everything the server answered."""
    out = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.settimeout(0.5)
        for chunk in [b"", *chunks]:
            if chunk:
                sock.settimeout(timeout)
                sock.sendall(chunk)
            deadline = time.monotonic() + timeout
            got = b""
            while time.monotonic() < deadline:
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    if got:
                        break
                    continue
                if not data:
                    return out + got
                got += data
                if got.endswith(b"\r\n") and not got.splitlines()[-1][3:4] == b"-":
                    # a complete final reply line; wait briefly for more (pipelined replies)
                    sock.settimeout(0.2)
            sock.settimeout(0.5)
            out += got
    return out


def wait_until(condition, timeout: float = 60.0, interval: float = 0.02):
    """Poll until condition() is true (processing runs after the 250, in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def settled(timeout: float = 60.0) -> None:
    """Wait until every accepted message has left the spool and been processed."""
    from postdesk.inbound import spool
    from postdesk.inbound.models import IncomingMessage

    def done():
        if spool.enabled() and spool.pending():
            return False
        return not IncomingMessage.objects.filter(state=IncomingMessage.State.PENDING).exists()

    wait_until(done, timeout=timeout)
