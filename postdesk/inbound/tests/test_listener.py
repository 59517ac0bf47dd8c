"""The SMTP/LMTP listener against real sockets: recipients, size, line endings and smuggling, durability, duplicates."""

import smtplib

import pytest
from django.db import DatabaseError

from postdesk.emails.models import Email, RawMessage
from postdesk.inbound.models import IncomingMessage
from postdesk.testing.listener import Listener, converse, settled, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGE = (
    b"From: Customer <customer@example.com>\r\nTo: support@acme.test\r\nSubject: Where is my order?\r\n"
    b"Message-ID: <order-1@example.com>\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\n\r\n"
    b"Hello, my order 1234 has not arrived yet. Could you check it please?\r\n"
)


@pytest.fixture
def listener(forwarding):
    with Listener() as running:
        yield running


def test_it_accepts_mail_for_a_forwarding_address_and_stores_it_byte_for_byte(listener):
    with smtplib.SMTP("127.0.0.1", listener.smtp_port) as client:
        client.sendmail("customer@example.com", ["support@acme.test"], MESSAGE)
    settled()
    row = IncomingMessage.objects.get()
    assert bytes(row.raw.data) == MESSAGE
    assert row.rcpt_to == ["support@acme.test"] and row.mail_from == "customer@example.com"
    email = wait_until(lambda: Email.objects.first())
    assert email.subject == "Where is my order?" and email.from_address == "customer@example.com"


def test_unknown_recipients_get_550(listener):
    with smtplib.SMTP("127.0.0.1", listener.smtp_port) as client:
        client.ehlo()
        client.mail("customer@example.com")
        code, text = client.rcpt("nobody@acme.test")
    assert code == 550 and b"5.1.1" in text
    assert not IncomingMessage.objects.exists()


def test_a_subaddress_reaches_its_forwarding_account(listener):
    with smtplib.SMTP("127.0.0.1", listener.smtp_port) as client:
        client.sendmail("customer@example.com", ["support+billing@acme.test"], MESSAGE)
    settled()
    assert IncomingMessage.objects.get().rcpt_to == ["support+billing@acme.test"]


def test_oversize_mail_gets_552_and_nothing_is_stored(forwarding):
    limit = 200_000
    big = MESSAGE + b"x" * 998 + b"\r\n"
    body = big * (limit // len(big) + 2)
    with Listener(max_size=limit) as small:
        reply = converse(
            small.smtp_port,
            [
                b"EHLO test\r\n",
                b"MAIL FROM:<a@example.com>\r\n",
                b"RCPT TO:<support@acme.test>\r\n",
                b"DATA\r\n",
                body + b".\r\n",
                b"NOOP\r\n",
            ],
        )
    assert b"552" in reply
    assert reply.rstrip().endswith(b"250 OK") or b"250" in reply.splitlines()[-1]
    assert not RawMessage.objects.exists()


def test_bare_lf_line_endings_are_refused(listener):
    reply = converse(
        listener.smtp_port,
        [
            b"EHLO test\r\n",
            b"MAIL FROM:<a@example.com>\r\n",
            b"RCPT TO:<support@acme.test>\r\n",
            b"DATA\r\n",
            b"Subject: x\n\nbare lf body\n\r\n.\r\n",
        ],
    )
    assert b"550 5.6.11" in reply
    assert not IncomingMessage.objects.exists()


SMUGGLING = [
    b"\n.\r\n",
    b"\r\n.\n",
    b"\n.\n",
    b"\r.\r",
    b"\r\n.\r",
    b"\r.\r\n",
    b"\r\n\x00.\r\n",
]


@pytest.mark.parametrize("end", SMUGGLING, ids=[repr(e) for e in SMUGGLING])
def test_smuggling_payloads_never_yield_a_second_message(listener, end):
    smuggled = (
        b"MAIL FROM:<attacker@evil.test>\r\nRCPT TO:<support@acme.test>\r\nDATA\r\n"
        b"From: ceo@acme.test\r\nSubject: smuggled\r\n\r\nwire money\r\n.\r\n"
    )
    payload = b"From: a@example.com\r\nSubject: first\r\n\r\nhello" + end + smuggled
    reply = converse(
        listener.smtp_port,
        [
            b"EHLO test\r\n",
            b"MAIL FROM:<a@example.com>\r\n",
            b"RCPT TO:<support@acme.test>\r\n",
            b"DATA\r\n",
            payload,
            b"QUIT\r\n",
        ],
    )
    settled()
    subjects = [bytes(r.raw.data) for r in IncomingMessage.objects.select_related("raw")]
    assert len(subjects) <= 1
    assert not any(s.startswith(b"From: ceo@acme.test") for s in subjects)
    assert reply.count(b"\r\n250 2.0.0") + reply.startswith(b"250 2.0.0") <= 1
    # the server keeps serving
    with smtplib.SMTP("127.0.0.1", listener.smtp_port) as client:
        client.sendmail("customer@example.com", ["support@acme.test"], MESSAGE)


def test_a_lone_cr_is_data_not_a_line_ending(listener):
    with smtplib.SMTP("127.0.0.1", listener.smtp_port) as client:
        client.sendmail(
            "a@example.com", ["support@acme.test"], b"Subject: cr\r\n\r\nline\r.\rstill the same line\r\n"
        )
    settled()
    assert b"line\r.\rstill the same line" in bytes(IncomingMessage.objects.get().raw.data)


def test_a_storage_error_answers_451_and_the_sender_can_retry(listener, monkeypatch):
    from postdesk.inbound import intake, spool

    target, name = (spool, "put") if spool.enabled() else (intake, "store")
    real = getattr(target, name)

    def broken(*args, **kwargs):
        raise DatabaseError("disk I/O error")

    monkeypatch.setattr(target, name, broken)
    with smtplib.SMTP("127.0.0.1", listener.smtp_port) as client:
        with pytest.raises(smtplib.SMTPDataError) as error:
            client.sendmail("customer@example.com", ["support@acme.test"], MESSAGE)
    assert error.value.smtp_code == 451
    monkeypatch.setattr(target, name, real)
    with smtplib.SMTP("127.0.0.1", listener.smtp_port) as client:
        client.sendmail("customer@example.com", ["support@acme.test"], MESSAGE)
    settled()
    assert IncomingMessage.objects.count() == 1


def test_the_same_message_twice_is_stored_once(listener):
    with smtplib.SMTP("127.0.0.1", listener.smtp_port) as client:
        client.sendmail("customer@example.com", ["support@acme.test"], MESSAGE)
        retried = (
            b"Received: from relay2.example.com by mx.acme.test; Thu, 26 Nov 2026 10:01:00 +0000\r\n"
            + MESSAGE
        )
        client.sendmail("customer@example.com", ["support@acme.test"], retried)
    wait_until(lambda: Email.objects.exists())
    assert IncomingMessage.objects.count() == 1 and Email.objects.count() == 1


def test_a_different_message_reusing_a_message_id_is_kept(listener):
    with smtplib.SMTP("127.0.0.1", listener.smtp_port) as client:
        client.sendmail("customer@example.com", ["support@acme.test"], MESSAGE)
        client.sendmail("customer@example.com", ["support@acme.test"], MESSAGE.replace(b"1234", b"5678"))
    wait_until(lambda: Email.objects.count() == 2)
    assert IncomingMessage.objects.count() == 2


def test_lmtp_answers_once_per_recipient(listener, project):
    from postdesk.mailboxes.services import upsert_account

    upsert_account(
        {"name": "sales-in", "protocol": "forwarding", "address": "sales@acme.test"}, project=project
    )
    reply = converse(
        listener.lmtp_port,
        [
            b"LHLO test\r\n",
            b"MAIL FROM:<customer@example.com>\r\n",
            b"RCPT TO:<support@acme.test>\r\n",
            b"RCPT TO:<sales@acme.test>\r\n",
            b"DATA\r\n",
            MESSAGE + b".\r\n",
            b"QUIT\r\n",
        ],
    )
    assert reply.count(b"250 2.0.0 OK") == 2  # one reply per recipient
    wait_until(lambda: Email.objects.exists())
    # one project: one stored copy, both addresses kept in the envelope
    settled()
    assert IncomingMessage.objects.get().rcpt_to == ["support@acme.test", "sales@acme.test"]
