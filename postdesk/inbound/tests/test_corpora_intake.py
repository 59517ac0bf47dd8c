"""Acceptance: every message of the MIME torture corpora and the bounce corpus is accepted over SMTP, processed,
listed in the email log API with its subject and sender, and returned byte for byte by the raw endpoint."""

import email
import email.policy
import re
import smtplib
import tracemalloc

import pytest

from postdesk.emails.models import Email
from postdesk.inbound.models import IncomingMessage
from postdesk.testing.corpora import corpus
from postdesk.testing.listener import Listener, wait_until

pytestmark = [pytest.mark.corpus, pytest.mark.django_db(transaction=True)]
EOL = re.compile(rb"\r?\n")


def corpus_files() -> list:
    files = []
    for name in ("mime-cpython", "mime-nodemailer", "mime-postal", "bounces"):
        folder = corpus(name)
        files += sorted(
            p
            for p in folder.rglob("*")
            if p.is_file()
            and p.suffix in (".txt", ".eml", "")
            and p.name not in ("SOURCE.md",)
            and not p.name.startswith("expected")
        )
    return files


def wire_bytes(data: bytes) -> bytes:
    """What an SMTP client puts on the wire: CRLF line endings, a final CRLF."""
    data = EOL.sub(b"\r\n", data)
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def oracle(raw: bytes) -> tuple[str, str]:
    """Subject and sender as the standard library reads them (a loose reference)."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    subject = str(msg.get("Subject") or "")
    sender = email.utils.parseaddr(str(msg.get("From") or ""))[1]
    return subject, sender.lower()


def test_every_corpus_message_is_accepted_processed_listed_and_returned_byte_for_byte(forwarding, api, sam):
    files = corpus_files()
    assert len(files) >= 300
    sent = {}
    with Listener(lmtp=False) as listener:
        with smtplib.SMTP("127.0.0.1", listener.smtp_port) as client:
            for path in files:
                data = wire_bytes(path.read_bytes())
                client.sendmail("relay@example.net", ["support@acme.test"], data)
                sent[path.name + str(len(sent))] = data
        # the same message twice (e.g. two fixtures that are identical) is stored once: count distinct keys
        wait_until(lambda: not IncomingMessage.objects.filter(state="pending").exists(), timeout=120)
    assert not IncomingMessage.objects.filter(state="failed").exists(), list(
        IncomingMessage.objects.filter(state="failed").values_list("error", flat=True)[:3]
    )
    client = api(sam)
    listed = {}
    cursor = None
    while True:
        params = {"limit": 500, "include_ticketed": "true"}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/emails", **params).json()
        listed.update({item["id"]: item for item in page["items"]})
        cursor = page["next_cursor"]
        if not cursor:
            break
    emails = {e.pk: e for e in Email.objects.select_related("raw")}
    assert set(listed) == set(emails)
    raws = {bytes(e.raw.data): e.pk for e in emails.values()}
    for data in sent.values():
        assert data in raws, "a message was not stored byte for byte"
        email_id = raws[data]
        assert client.get(f"/api/v1/emails/{email_id}/raw").content == data
        subject, sender = oracle(data)
        item = listed[email_id]
        if subject.strip() and "=?" not in subject and subject.isascii():
            assert item["subject"].split() == subject.split(), (subject, item["subject"])
        elif subject.strip():
            assert item["subject"].strip(), subject
        if sender and "@" in sender:
            assert item["sender"].lower() == sender, (sender, item["sender"])


def test_the_largest_fixtures_are_processed_in_bounded_memory(forwarding):
    from postdesk.testing.factories import receive

    large = sorted((p for p in corpus_files()), key=lambda p: p.stat().st_size)[-3:]
    assert large[-1].stat().st_size > 1_000_000
    for path in large:
        data = wire_bytes(path.read_bytes())
        tracemalloc.start()
        received = receive(forwarding, data)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert received is not None
        assert peak < 40 * len(data) + 20_000_000, f"{path.name}: peak {peak} bytes for {len(data)} bytes"
