"""The sending pipeline against real SMTP servers on 127.0.0.1: STARTTLS + AUTH LOGIN with a self-signed certificate,
temporary and permanent failures, XOAUTH2 with a local token server, header injection."""

import datetime as dt
import logging

import pytest

from postdesk.core import clock
from postdesk.core.errors import Invalid
from postdesk.emails.models import Email, EventKind, Kind, Status
from postdesk.mailboxes.services import upsert_account
from postdesk.outbound import sender
from postdesk.outbound.pool import POOL
from postdesk.outbound.services import queue_email, test_connection
from postdesk.testing.oauthserver import TokenServer
from postdesk.testing.smtpsink import SmtpSink

pytestmark = pytest.mark.django_db
PASSWORD = "Correct-Horse-Battery-9"


@pytest.fixture(autouse=True)
def _fresh_pool():
    POOL.clear()
    yield
    POOL.clear()


@pytest.fixture
def secure_sink(tmp_path):
    with SmtpSink(tls_folder=tmp_path, users={"support@acme.test": PASSWORD}) as sink:
        yield sink


def smtp_account(
    port, *, password=PASSWORD, ca_file="", tls_verify=True, auth="login", security="starttls", **extra
):
    account, _ = upsert_account(
        {
            "name": "support-out",
            "protocol": "smtp",
            "address": "support@acme.test",
            "display_name": "Acme Support",
            "host": "127.0.0.1",
            "port": port,
            "security": security,
            "auth": auth,
            "username": "support@acme.test",
            "password": password,
            "ca_file": ca_file,
            "tls_verify": tls_verify,
            "is_default": True,
            **extra,
        }
    )
    return account


def send_one(project, account, **extra) -> Email:
    email = queue_email(
        project=project,
        account=account,
        kind=Kind.AGENT_REPLY,
        to=["customer@example.com"],
        subject="Your order",
        text="Hello,\nit ships today.\n",
        **extra,
    )
    sender.deliver([email.pk])
    email.refresh_from_db()
    return email


def test_it_sends_over_starttls_with_auth_login_to_a_server_with_a_self_signed_certificate(
    project, secure_sink
):
    account = smtp_account(secure_sink.port, ca_file=str(secure_sink.cert))
    email = send_one(project, account)
    assert email.status == Status.SENT
    [received] = secure_sink.messages
    assert received.rcpt_tos == ["customer@example.com"]
    assert received.mail_from.startswith("support+pdb-") and received.mail_from.endswith("@acme.test")
    assert received.data == bytes(email.raw.data).replace(b"\r\n", b"\n") or received.data == bytes(
        email.raw.data
    )
    assert list(email.events.values_list("kind", flat=True)) == [EventKind.DELIVERED]


def test_an_untrusted_certificate_is_refused_unless_verification_is_off(project, secure_sink):
    email = send_one(project, smtp_account(secure_sink.port))
    assert email.status == Status.FAILED and "certificate" in email.smtp_response
    POOL.clear()
    email = send_one(project, smtp_account(secure_sink.port, tls_verify=False))
    assert email.status == Status.SENT


def test_a_wrong_password_fails_with_the_servers_message_and_no_secret_anywhere(
    project, secure_sink, caplog, api, sam
):
    caplog.set_level(logging.DEBUG)
    account = smtp_account(secure_sink.port, ca_file=str(secure_sink.cert), password="Wrong-Password-42")
    email = send_one(project, account)
    assert email.status == Status.FAILED
    assert "535" in email.smtp_response
    account.refresh_from_db()
    assert "535" in account.last_error
    body = api(sam).get(f"/api/v1/emails/{email.pk}").content.decode()
    for text in (caplog.text, email.smtp_response, account.last_error, body):
        assert "Wrong-Password-42" not in text
    assert secure_sink.messages == []


def test_a_server_answering_451_twice_then_250_delivers_exactly_once(project, smtp_sink):
    account = smtp_account(smtp_sink.port, security="none", auth="none")
    smtp_sink.state.data_replies += ["451 4.3.0 Try later", "451 4.3.0 Try later"]
    email = send_one(project, account)
    assert email.status == Status.QUEUED and email.attempts == 1
    for _ in range(2):
        clock.set_now(email.next_attempt_at + dt.timedelta(seconds=1))
        sender.deliver(sender.due_ids())
        email.refresh_from_db()
    assert email.status == Status.SENT and email.attempts == 3
    assert len(smtp_sink.messages) == 1
    assert list(email.events.values_list("kind", flat=True)) == ["deferred", "deferred", "delivered"]


def test_a_550_gives_dropped_with_the_reply_kept(project, smtp_sink):
    account = smtp_account(smtp_sink.port, security="none", auth="none")
    smtp_sink.state.data_replies.append("550 5.7.1 Message rejected as spam")
    email = send_one(project, account)
    assert email.status == Status.DROPPED
    assert "550 5.7.1 Message rejected as spam" in email.smtp_response
    assert email.events.get().kind == EventKind.DROPPED


def test_temporary_failures_give_up_after_the_last_attempt(project, smtp_sink):
    account = smtp_account(smtp_sink.port, security="none", auth="none")
    smtp_sink.state.data_replies += ["421 4.4.2 Busy"] * sender.MAX_ATTEMPTS
    email = send_one(project, account)
    while email.status == Status.QUEUED:
        clock.set_now(email.next_attempt_at + dt.timedelta(seconds=1))
        sender.deliver(sender.due_ids())
        email.refresh_from_db()
    assert email.status == Status.DROPPED and email.attempts == sender.MAX_ATTEMPTS


def test_the_connection_test_reports_the_servers_answer(project, secure_sink):
    ok, message = test_connection(smtp_account(secure_sink.port, ca_file=str(secure_sink.cert)))
    assert ok and "STARTTLS" in message and "AUTH LOGIN accepted" in message
    POOL.clear()
    ok, message = test_connection(
        smtp_account(secure_sink.port, ca_file=str(secure_sink.cert), password="nope-nope-1")
    )
    assert not ok and "535" in message and "nope-nope-1" not in message


@pytest.fixture
def token_server():
    with TokenServer() as server:
        yield server


def oauth_account(port, token_server, refresh_token):
    account = smtp_account(
        port,
        security="none",
        auth="xoauth2",
        password="",
        oauth_provider="custom",
        oauth_client_id="postdesk",
        oauth_client_secret="client-secret-1",
        oauth_token_url=token_server.url,
    )
    account.oauth_refresh_token = refresh_token
    account.save()
    return account


def test_xoauth2_refreshes_the_token_and_saves_the_rotated_refresh_token(project, token_server):
    first = token_server.issue()
    with SmtpSink(oauth=True) as sink:
        sink.state.valid_tokens = token_server.access_tokens
        account = oauth_account(sink.port, token_server, first["refresh_token"])
        email = send_one(project, account)
        assert email.status == Status.SENT, email.smtp_response
        account.refresh_from_db()
        assert account.oauth_refresh_token != first["refresh_token"]  # rotated ...
        assert account.oauth_refresh_token in token_server.refresh_tokens  # ... and the new one saved
        assert sink.state.auth_tokens == [account.oauth_access_token]
        # the saved token keeps working after the access token expires
        clock.set_now(clock.now() + dt.timedelta(hours=2))
        POOL.clear()
        assert send_one(project, account).status == Status.SENT


def test_a_revoked_refresh_token_gives_a_clear_account_error_and_other_accounts_keep_working(
    project, token_server, smtp_sink
):
    with SmtpSink(oauth=True) as sink:
        account = oauth_account(sink.port, token_server, "rt-revoked")
        email = send_one(project, account)
        assert email.status == Status.FAILED
        account.refresh_from_db()
        assert "OAuth token refresh failed" in account.last_error and "revoked" in account.last_error
    other, _ = upsert_account(
        {
            "name": "other-out",
            "protocol": "smtp",
            "address": "other@acme.test",
            "host": "127.0.0.1",
            "port": smtp_sink.port,
            "security": "none",
            "auth": "none",
        }
    )
    assert send_one(project, other).status == Status.SENT


INJECTIONS = [
    ({"subject": "Hello\r\nBcc: victim@evil.test"}, "subject"),
    ({"to": ["customer@example.com\r\nBcc: victim@evil.test"]}, "to"),
    ({"cc": ["a@example.com>\nBcc: victim@evil.test"]}, "cc"),
    ({"bcc": ["a@example.com\rX: y"]}, "bcc"),
    ({"from_name": "Acme\r\nBcc: victim@evil.test"}, "from"),
]


@pytest.mark.parametrize("change, field", INJECTIONS, ids=[f for _, f in INJECTIONS])
def test_header_injection_is_refused_before_anything_is_queued(project, smtp_sink, change, field):
    account = smtp_account(smtp_sink.port, security="none", auth="none")
    values = {
        "project": project,
        "account": account,
        "kind": Kind.AGENT_REPLY,
        "to": ["customer@example.com"],
        "subject": "Your order",
        "text": "Hello",
    }
    values.update(change)
    with pytest.raises(Invalid) as error:
        from django.db import transaction

        with transaction.atomic():
            queue_email(**values)
    assert field in (error.value.field or "").lower()
    assert not Email.objects.exists()
    assert smtp_sink.messages == []


@pytest.mark.django_db(transaction=True)
def test_the_web_role_sends_right_after_the_commit_from_its_own_thread_and_each_email_once(
    project, smtp_sink, monkeypatch
):
    import time

    from django.db import transaction

    account = smtp_account(smtp_sink.port, security="none", auth="none")
    monkeypatch.setattr(sender, "SEND_FROM_PROCESS", True)
    with transaction.atomic():
        emails = [
            queue_email(project=project, account=account, kind=Kind.AGENT_REPLY, to=["customer@example.com"],
                        subject=f"Reply {i}", text="Hello")
            for i in range(3)
        ]
        time.sleep(0.2)
        assert smtp_sink.messages == []  # nothing leaves before the commit
    deadline = time.monotonic() + 10
    while len(smtp_sink.messages) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    sender.deliver([e.pk for e in emails])  # the job arriving late finds them sent: nothing twice
    assert len(smtp_sink.messages) == 3
    assert set(Email.objects.filter(pk__in=[e.pk for e in emails]).values_list("status", flat=True)) == {Status.SENT}
