"""Hostile input catalogue, at the SMTP door (the real listener on 127.0.0.1): each test names the input and the safe
behaviour. More of the catalogue: inbound/tests/test_listener.py (smuggling with bare LF/CR and NUL endings, bare LF
refused, 552 over the size limit), test_hostile_content.py (through the whole receive path) and the table in
docs/security-and-reliability.md."""

from __future__ import annotations

import dataclasses
import smtplib
import socket
import ssl
import time

import pytest
from django.conf import settings

from postdesk.emails.models import Email
from postdesk.inbound.models import IncomingMessage
from postdesk.testing.listener import Listener, converse, wait_until
from postdesk.testing.smtpsink import self_signed

pytestmark = pytest.mark.django_db(transaction=True)

HEAD = (
    b"From: Customer <customer@example.com>\r\nTo: support@acme.test\r\nSubject: %s\r\n"
    b"Message-ID: <%s@example.com>\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\n"
)


def message(subject: bytes, ident: bytes, body: bytes, headers: bytes = b"") -> bytes:
    return HEAD % (subject, ident) + headers + b"\r\n" + body


def settle() -> None:
    """Move whatever the listener spooled into the database now (the worker's job), so that absence means absence."""
    from postdesk.inbound import spool, tasks

    if spool.enabled():
        tasks.process_spool.call_local()


@pytest.fixture
def listener(forwarding):
    with Listener(lmtp=False) as running:
        yield running


def transaction(port: int, data: bytes) -> bytes:
    return converse(
        port,
        [
            b"EHLO test\r\n",
            b"MAIL FROM:<a@example.com>\r\n",
            b"RCPT TO:<support@acme.test>\r\n",
            b"DATA\r\n",
            data,
            b"QUIT\r\n",
        ],
    )


# SMTP smuggling: more end-of-data look-alikes than inbound/tests/test_listener.py ---------------------------------

SMUGGLED = (
    b"MAIL FROM:<attacker@evil.test>\r\nRCPT TO:<support@acme.test>\r\nDATA\r\n"
    b"From: ceo@acme.test\r\nSubject: smuggled\r\n\r\nwire money\r\n.\r\n"
)
LOOKALIKES = [
    b"\r\n..\r\n",  # a dot-stuffed line: data, not the end
    b"\r\n .\r\n",  # a space before the dot
    b"\r\r\n.\r\r\n",  # CR CR LF
    b"\r\n.\x0b\r\n",  # a control character after the dot
    b"\r\n\xc2\xa0.\r\n",  # a no-break space
    b"\r\n.\r\x00\n",  # NUL between CR and LF
]


@pytest.mark.parametrize("end", LOOKALIKES, ids=[repr(e) for e in LOOKALIKES])
def test_end_of_data_lookalikes_never_start_a_second_transaction(listener, end):
    payload = message(b"first", b"first", b"hello" + end + SMUGGLED) + b".\r\n"
    reply = transaction(listener.smtp_port, payload)
    settle()
    if b"250 2.0.0" in reply:
        wait_until(lambda: IncomingMessage.objects.exists())
    raws = [bytes(r.raw.data) for r in IncomingMessage.objects.select_related("raw")]
    assert len(raws) <= 1 and not any(r.startswith(b"From: ceo@acme.test") for r in raws)
    assert reply.count(b"250 2.0.0") <= 1
    if raws and b"\r\n.\r\n" not in end:
        assert b"wire money" in raws[0]  # kept inside the one message, as data


# Long lines ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [1_001, 10_000, 900_000])
def test_lines_longer_than_1000_octets_are_stored_whole_never_truncated(listener, length):
    line = b"x" * (length - 1) + b"y"
    raw = message(b"long line", b"long-%d" % length, line + b"\r\nafter\r\n")
    with smtplib.SMTP("127.0.0.1", listener.smtp_port) as client:
        client.sendmail("customer@example.com", ["support@acme.test"], raw)
    row = wait_until(lambda: IncomingMessage.objects.select_related("raw").first())
    assert bytes(row.raw.data) == raw


def test_a_line_longer_than_a_megabyte_is_stored_whole_or_refused_clearly_never_cut(listener):
    line = b"z" * 2_000_000
    huge = message(b"huge line", b"huge", line + b"\r\n")
    reply = transaction(listener.smtp_port, huge + b".\r\n")
    if b"250 2.0.0" in reply:
        row = wait_until(lambda: IncomingMessage.objects.select_related("raw").first())
        assert bytes(row.raw.data) == huge
    else:
        settle()
        assert b"\r\n5" in reply and not IncomingMessage.objects.exists()
    with smtplib.SMTP("127.0.0.1", listener.smtp_port) as client:  # and the listener keeps serving
        client.sendmail("customer@example.com", ["support@acme.test"], message(b"ok", b"ok", b"fine\r\n"))
    wait_until(lambda: Email.objects.filter(subject="ok").exists())


def test_an_overlong_command_line_gets_a_clear_error(listener):
    reply = converse(
        listener.smtp_port,
        [b"EHLO test\r\n", b"MAIL FROM:<" + b"a" * 5000 + b"@example.com>\r\n", b"NOOP\r\n"],
    )
    assert b"500" in reply.split(b"\r\n250 ", 1)[-1] or b"Line too long" in reply or b"501" in reply
    assert reply.rstrip().endswith(b"250 OK") or reply.rstrip().endswith(b"OK")
    settle()
    assert not IncomingMessage.objects.exists()


# Commands pipelined after STARTTLS (CVE-2011-0411 family) ---------------------------------------------------------


@pytest.fixture
def tls_listener(forwarding, tmp_path, monkeypatch):
    cert, key = self_signed(tmp_path)
    monkeypatch.setattr(
        settings,
        "CONFIG",
        dataclasses.replace(settings.CONFIG, smtp_tls_cert=str(cert), smtp_tls_key=str(key)),
    )
    with Listener(lmtp=False) as running:
        yield running


def _read_reply(sock) -> bytes:
    data = b""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        lines = data.split(b"\r\n")
        if len(lines) > 1 and len(lines[-2]) >= 4 and lines[-2][3:4] == b" ":
            break
    return data


def test_commands_pipelined_after_starttls_are_discarded_not_run_inside_tls(tls_listener):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", tls_listener.smtp_port), timeout=10) as plain:
        assert _read_reply(plain).startswith(b"220")
        plain.sendall(b"EHLO attacker\r\n")
        assert b"STARTTLS" in _read_reply(plain)
        # the injected commands ride in the same packet as STARTTLS, before the handshake
        plain.sendall(b"STARTTLS\r\nMAIL FROM:<attacker@evil.test>\r\nRCPT TO:<support@acme.test>\r\n")
        time.sleep(0.3)
        ready = plain.recv(65536)
        assert ready.startswith(b"220") and b"250" not in ready  # no reply to the injected commands in clear
        with context.wrap_socket(plain, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"EHLO again\r\n")
            assert b"250" in _read_reply(tls)
            tls.sendall(b"RCPT TO:<support@acme.test>\r\n")
            assert _read_reply(tls).startswith(b"503")  # no MAIL FROM was ever accepted inside TLS
            tls.sendall(b"DATA\r\n")
            assert _read_reply(tls).startswith(b"503")
    settle()
    assert not IncomingMessage.objects.exists()


# Oversized structures through the whole receive path (listener, intake, processing) ------------------------------


def _receive_over_smtp(port: int, raw: bytes, seconds: float) -> Email:
    started = time.monotonic()
    with smtplib.SMTP("127.0.0.1", port, timeout=seconds) as client:
        client.sendmail("customer@example.com", ["support@acme.test"], raw)
    email = wait_until(
        lambda: Email.objects.filter(raw__isnull=False).order_by("-id").first(), timeout=seconds
    )
    elapsed = time.monotonic() - started
    assert elapsed < seconds, f"{elapsed:.1f} s"
    assert bytes(email.raw.data) == raw  # kept byte for byte
    return email


@pytest.mark.slow
def test_10000_nested_multiparts_are_stored_and_processed_within_bounds(listener):
    n = 10_000
    body = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i) for i in range(n)
    )
    body += b"Content-Type: text/plain\r\n\r\ndeep inside\r\n" + b"".join(
        b"--b%d--\r\n" % i for i in range(n)
    )
    raw = message(b"nested", b"nested", body, b"MIME-Version: 1.0\r\n")
    email = _receive_over_smtp(listener.smtp_port, raw, 30)
    assert email.subject == "nested" and email.status in ("new", "unparseable")


@pytest.mark.slow
def test_a_million_tiny_parts_are_stored_and_processed_within_bounds(listener):
    body = b"--b\r\n\r\nx\r\n" * 1_000_000 + b"--b--\r\n"
    raw = message(
        b"million", b"million", body, b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n'
    )
    email = _receive_over_smtp(listener.smtp_port, raw, 60)
    assert email.subject == "million" and email.attachments.count() <= 1000


@pytest.mark.slow
def test_five_megabytes_of_headers_are_stored_and_processed_within_bounds(listener):
    junk = b"".join(b"X-Junk-%d: %s\r\n" % (i, b"v" * 60) for i in range(70_000))
    raw = message(b"headers", b"headers", b"the body\r\n", junk)
    email = _receive_over_smtp(listener.smtp_port, raw, 60)
    assert email.subject == "headers" and email.content.text.strip() == "the body"


@pytest.mark.slow
def test_a_30_megabyte_base64_attachment_is_received_in_bounded_memory(listener):
    import base64
    import tracemalloc

    data = bytes(range(256)) * (22 * 1024 * 1024 // 256)
    encoded = base64.encodebytes(data).replace(b"\n", b"\r\n")  # ~30 MB on the wire
    body = (
        b"--m\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--m\r\n"
        b"Content-Type: application/octet-stream; name=big.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + encoded
        + b"--m--\r\n"
    )
    del encoded
    raw = message(
        b"big", b"big", body, b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="m"\r\n'
    )
    tracemalloc.start()
    try:
        email = _receive_over_smtp(listener.smtp_port, raw, 120)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    attachment = email.attachments.get()
    assert attachment.size == len(data) and bytes(attachment.data) == data
    # the listener, the intake and the processing together hold a few copies of the message, never more
    assert peak < 10 * len(raw), f"peak {peak / 1e6:.0f} MB for a {len(raw) / 1e6:.0f} MB message"
