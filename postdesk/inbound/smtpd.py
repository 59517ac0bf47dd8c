"""The SMTP and LMTP listener (aiosmtpd). Thin on purpose: check the recipient, store the raw bytes durably, answer,
queue the processing. Everything about the message itself happens later in the worker (inbound.processing).

Rules at the door:
- RCPT to an address that is no enabled forwarding account: 550 5.1.1.
- Larger than POSTDESK_SMTP_MAX_SIZE: 552, nothing stored.
- Only <CRLF>.<CRLF> ends DATA (aiosmtpd reads lines ending in CRLF only); a message with bare LF line endings is
  refused with 550 5.6.11 (as Postfix does since 3.9), a lone CR stays data. Together these close the SMTP
  smuggling family (CVE-2023-51764/51765/51766).
- Commands pipelined before STARTTLS are discarded by aiosmtpd when TLS starts (RFC 3207 4.2).
- 250 only after the commit; a storage error gives 451 4.3.0 and the sender retries.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
import time

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections

from postdesk.inbound.intake import Delivery, IntakeWriter

log = logging.getLogger(__name__)
MAX_RECIPIENTS = 100


class AccountDirectory:
    """Forwarding addresses -> accounts, held in memory so that RCPT needs no database round trip (and no thread hop)
    under load. Reloaded in the background every few seconds, and at once (off the event loop) on a miss."""

    def __init__(self, ttl: float = 5.0):
        self.ttl = ttl
        self._map: dict[str, object] = {}
        self._loaded = 0.0
        self._lock = threading.Lock()

    def load(self) -> None:
        from postdesk.mailboxes.models import EmailAccount, Protocol

        close_old_connections()
        accounts = EmailAccount.objects.filter(protocol=Protocol.FORWARDING, enabled=True, project__isnull=False)
        mapping = {a.address.lower(): a for a in accounts}
        with self._lock:
            self._map, self._loaded = mapping, time.monotonic()

    @staticmethod
    def _forms(address: str) -> tuple[str, str]:
        address = (address or "").strip().lower()
        local, _, domain = address.rpartition("@")
        return address, f"{local.split('+', 1)[0]}@{domain}"

    def cached(self, address: str):
        """(account or None, whether the answer may be stale and worth a reload)."""
        exact, base = self._forms(address)
        found = self._map.get(exact) or self._map.get(base)
        age = time.monotonic() - self._loaded
        return found, age > self.ttl or (found is None and age > 1.0)

    def lookup(self, address: str):
        """The account for an address; `local+tag@domain` (VERP return paths, subaddresses) reaches `local@domain`."""
        found, stale = self.cached(address)
        if stale:
            self.load()
            found, _ = self.cached(address)
        return found


class InflowGate:
    """Flow control, as Postfix's in_flow_delay: while more messages wait in the spool for a worker than the
    workers take in a batch (messages already being processed do not count: the next batch should be ready when a
    worker finishes one), a new message's MAIL FROM is answered a little later (10 ms steps, at most ``max_hold`` seconds),
    so that senders slow to the rate at which mail is processed instead of piling up a queue that takes seconds to
    become searchable. Nothing is refused, and nothing already accepted waits longer.

    When the workers make no progress (stopped, or the database is away), holding would only slow senders down
    without shortening anything: after ``stall`` seconds without the backlog shrinking, the gate stays open until
    it shrinks again.

    POSTDESK_SMTP_INFLOW_LIMIT, 12 by default (0: off). Measured with bench/ingest.py (10 sessions pushing as fast
    as they are answered, the machine saturated): without it the spool grows through the run and 250 -> searchable
    takes seconds (p95 1.3-2.5 s); with 12, p95 ~0.15-0.2 s at the same throughput."""

    def __init__(self, count_backlog, limit: int = 12, max_hold: float = 1.0, stall: float = 2.0,
                 poll: float = 0.01):
        self.count_backlog = count_backlog
        self.limit, self.max_hold, self.stall, self.poll = limit, max_hold, stall, poll
        self.backlog = 0
        self._checked = 0.0
        self._progress_at: float | None = None  # when the backlog last shrank (or was at most the limit)
        self._counting: asyncio.Future | None = None

    async def _refresh(self, loop) -> int:
        if loop.time() - self._checked < self.poll:
            return self.backlog
        if self._counting is None:  # one count at a time, shared by every waiting session
            self._counting = loop.run_in_executor(None, self.count_backlog)
        counting = self._counting
        try:
            value = await counting
        except Exception:  # cannot count: do not hold anyone
            value = 0
        finally:
            if self._counting is counting:
                self._counting = None
        now = loop.time()
        if self._progress_at is None or value < self.backlog or value <= self.limit:
            self._progress_at = now
        self.backlog, self._checked = value, now
        return value

    async def wait(self) -> float:
        """Hold while the backlog is over the limit; returns the seconds held."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:
            backlog = await self._refresh(loop)
            now = loop.time()
            if backlog <= self.limit or now - self._progress_at > self.stall or now - started >= self.max_hold:
                return now - started
            await asyncio.sleep(self.poll)


class IntakeHandler:
    def __init__(self, writer: IntakeWriter, directory: AccountDirectory, protocol: str = "smtp",
                 gate: InflowGate | None = None):
        self.writer = writer
        self.directory = directory
        self.protocol = protocol
        self.gate = gate
        self._lookup = sync_to_async(directory.lookup, thread_sensitive=False)

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options):
        if self.gate is not None:
            await self.gate.wait()
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options
    ):
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        try:
            account, stale = self.directory.cached(address)
            if stale:
                account = await self._lookup(address)
        except Exception:
            log.exception("recipient lookup failed")
            return "451 4.3.0 Temporary lookup failure, try again later"
        if account is None:
            return "550 5.1.1 No such recipient here"
        envelope.rcpt_tos.append(address)
        accounts = getattr(envelope, "postdesk_accounts", None)
        if accounts is None:
            accounts = envelope.postdesk_accounts = []
        accounts.append(account)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope):
        raw = envelope.original_content or b""
        count = len(envelope.rcpt_tos)
        if raw.count(b"\n") != raw.count(b"\r\n"):  # a bare LF (two C-speed counts; a regex costs ~20x more)
            return self._answer("550 5.6.11 Bare <LF> line endings are not allowed, use <CR><LF>", count)
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer or "")
        delivery = Delivery(
            raw=raw,
            mail_from=envelope.mail_from or "",
            rcpt_to=list(envelope.rcpt_tos),
            accounts=list(getattr(envelope, "postdesk_accounts", [])),
            protocol=self.protocol,
            peer=peer,
            helo=session.host_name or "",
        )
        try:
            stored = await self.writer.submit(delivery)
        except Exception as exc:
            log.error("could not store a message from %s: %s", peer, exc)
            return self._answer("451 4.3.0 Temporary storage failure, try again later", count)
        note = f" queued as {stored.ids[0]}" if stored.ids else " (duplicate, already stored)"
        return self._answer(f"250 2.0.0 OK{note}", count)

    def _answer(self, reply: str, count: int) -> str:
        if self.protocol == "lmtp":  # LMTP: one reply per accepted recipient
            return "\r\n".join([reply] * max(count, 1))
        return reply


END_OF_DATA = b"\r\n.\r\n"


class FastData:
    """DATA read as whole chunks up to the terminator instead of line by line (aiosmtpd's loop costs about a
    millisecond of Python per 10 KB message). The rules stay the same: only <CRLF>.<CRLF> ends the data (the CRLF
    that ended the DATA command line counts as its first CRLF, so an empty message is just '.'); a lone CR or LF is
    data; leading dots are unstuffed; more than the size limit is read and discarded, then answered 552."""

    line_length_limit = 1024 * 1024  # the reader's buffer limit: larger messages are read in pieces

    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        reader = self._reader
        limit = self.data_size_limit
        reader._buffer[0:0] = b"\r\n"  # the DATA line's CRLF: the terminator may follow it at once
        parts: list[bytes] = []
        size = 0
        too_much = False
        while True:
            try:
                chunk = await reader.readuntil(END_OF_DATA)
                last = True
            except asyncio.LimitOverrunError as exc:
                chunk = await reader.readexactly(exc.consumed)
                last = False
            size += len(chunk)
            if limit and size > limit + len(END_OF_DATA) + 2:
                too_much = True
                parts.clear()
            elif not too_much:
                parts.append(chunk)
            if last:
                break
        if too_much:
            self._set_post_data_state()
            await self.push("552 Error: Too much mail data")
            return
        data = b"".join(parts)  # CRLF + the message + .CRLF (dot-stuffed)
        body = data[:-3]  # keep the last line's CRLF, drop the final '.CRLF'
        content = body.replace(b"\r\n.", b"\r\n")[2:]  # unstuff leading dots; drop the virtual CRLF
        self.envelope.content = content
        self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)


class IntakeSMTP(FastData, SMTP):
    pass


class IntakeLMTP(FastData, LMTP):
    pass


def tls_context() -> ssl.SSLContext | None:
    config = settings.CONFIG
    if not config.smtp_tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.smtp_tls_cert, config.smtp_tls_key)
    return context


async def start_servers(
    smtp: tuple[str, int] | None,
    lmtp: tuple[str, int] | None,
    writer: IntakeWriter,
    directory: AccountDirectory | None = None,
    max_size: int | None = None,
):
    """Start the listeners on the running loop; returns the asyncio servers."""
    loop = asyncio.get_running_loop()
    directory = directory or AccountDirectory()
    config = settings.CONFIG
    context = tls_context()
    servers = []
    from postdesk.inbound import spool

    gate = None
    if spool.enabled() and config.smtp_inflow_limit:
        gate = InflowGate(spool.unclaimed, limit=config.smtp_inflow_limit)
    common = dict(
        data_size_limit=max_size or config.smtp_max_message_bytes,
        hostname=config.smtp_hostname,
        ident="postdesk",
        enable_SMTPUTF8=True,
        decode_data=False,
        timeout=300,
        loop=loop,
    )
    if smtp:
        smtp_handler = IntakeHandler(writer, directory, "smtp", gate)
        servers.append(
            await loop.create_server(
                lambda: IntakeSMTP(smtp_handler, tls_context=context, require_starttls=False, **common), *smtp
            )
        )
    if lmtp:
        lmtp_handler = IntakeHandler(writer, directory, "lmtp", gate)
        servers.append(await loop.create_server(lambda: IntakeLMTP(lmtp_handler, **common), *lmtp))
    return servers


def run(smtp: tuple[str, int] | None, lmtp: tuple[str, int] | None) -> None:
    """Run the listeners until SIGTERM/SIGINT."""
    import signal
    import sys

    # the event loop and the writer thread hand every message to each other: a short GIL switch interval keeps
    # those hand-offs from adding milliseconds to each message
    sys.setswitchinterval(0.001)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    writer = IntakeWriter(loop)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def main():
        servers = await start_servers(smtp, lmtp, writer)
        for label, addr in (("SMTP", smtp), ("LMTP", lmtp)):
            if addr:
                log.info("%s listening on %s:%s", label, *addr)
        await stop.wait()
        for server in servers:
            server.close()
            await server.wait_closed()

    try:
        loop.run_until_complete(main())
    finally:
        writer.stop()
        loop.close()
