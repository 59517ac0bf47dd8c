"""Webhooks end to end, against a real receiver on 127.0.0.1: every event once, every signature valid, each ticket's
events in order, everything delivered after the receiver was down for a while, the endpoint disabled after failing
for a day, private targets refused unless the operator allows them."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from django.conf import settings
from django.db import transaction

from postdesk.core import clock
from postdesk.core.models import AuditEvent
from postdesk.emails.models import Email, Kind
from postdesk.integrations import delivery, events, payloads, tasks
from postdesk.integrations.models import WebhookDelivery, WebhookEndpoint
from postdesk.integrations.tests.conftest import SECRET
from postdesk.testing.factories import raw_message, receive
from postdesk.tickets.models import Ticket

START = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def clock_at_start():
    clock.set_now(START)
    return clock


def conversation(api, alice, bob, forwarding, n: int = 1) -> dict:
    """A customer writes, Alice makes a ticket and replies, hands it to Bob, the customer answers, Bob closes it."""
    first = receive(forwarding, raw_message(subject=f"Kettle {n}", message_id=f"<c{n}-1@example.com>"))
    number = (
        api(alice)
        .post(f"/api/v1/emails/{first.pk}/ticket", {"new": {"title": f"Kettle {n}"}})
        .json()["number"]
    )
    reply_id = api(alice).post(f"/api/v1/tickets/{number}/reply", {"body": "We are on it."}).json()["id"]
    assert api(alice).post(f"/api/v1/tickets/{number}/transfer", {"agent": "bob"}).status_code == 200
    ours = Email.objects.get(pk=reply_id)
    receive(
        forwarding,
        raw_message(
            subject=f"Re: Kettle {n}",
            message_id=f"<c{n}-2@example.com>",
            in_reply_to=ours.message_id,
            references=ours.message_id,
            body="Thanks, it works now.",
        ),
    )
    assert api(bob).post(f"/api/v1/tickets/{number}/close").status_code == 200
    return {"ticket": Ticket.objects.get(number=number), "first": first, "reply": ours}


def keys_of(arrivals) -> dict[int, str]:
    return dict(
        WebhookDelivery.objects.filter(pk__in=[a.delivery for a in arrivals]).values_list(
            "id", "ordering_key"
        )
    )


def assert_in_order_per_key(arrivals) -> None:
    keys = keys_of(arrivals)
    seen: dict[str, int] = {}
    for a in arrivals:
        key = keys[a.delivery]
        if key:
            assert a.delivery > seen.get(key, 0), f"{key}: delivery {a.delivery} after {seen[key]}"
            seen[key] = a.delivery


@pytest.mark.django_db(transaction=True)
def test_a_receiver_gets_each_event_once_signed_and_in_order_per_ticket(
    api, alice, bob, forwarding, sender_account, hook, receiver
):
    one = conversation(api, alice, bob, forwarding, 1)
    two = conversation(api, alice, bob, forwarding, 2)

    arrivals = receiver.arrivals
    assert arrivals and all(a.signature_ok for a in arrivals)
    assert len({a.delivery for a in arrivals}) == len(arrivals) == WebhookDelivery.objects.count()
    assert set(WebhookDelivery.objects.values_list("state", flat=True)) == {"delivered"}
    assert_in_order_per_key(arrivals)

    for case in (one, two):
        ticket = case["ticket"]
        mine = [a for a in arrivals if keys_of([a])[a.delivery] == f"ticket:{ticket.pk}"]
        story = [
            (a.event, a.body.get("ticket", {}).get("status") if "ticket" in a.body else None) for a in mine
        ]
        assert [e for e, _ in story] == [
            "ticket.add",
            "email.sent",
            "ticket.update",  # sent counters, waiting for the customer
            "ticket.update",  # handed to Bob
            "email.received",
            "ticket.update",  # received counters, waiting for the agent
            "ticket.update",  # closed
        ]
        add, sent, after_sent, transfer, received, after_received, close = (a.body for a in mine)
        # the ticket made from an email arrives as one 'add' with its committed state
        assert add["action"] == "add" and add["ticket"]["receivedCount"] == 1
        assert add["ticket"]["firstReceivedTime"] is not None and add["ticket"]["ticketNo"] == ticket.number
        assert (
            sent["emailId"] == case["reply"].pk and sent["direction"] == "out" and sent["userId"] == alice.pk
        )
        assert after_sent["ticket"] == {
            **payloads.ticket_identifiers(add["ticket"]),
            "sentCount": 1,
            "firstSentTime": after_sent["ticket"]["firstSentTime"],
            "lastSentTime": after_sent["ticket"]["firstSentTime"],
            "substatus": "waiting4entity",
        }
        assert transfer["ticket"] == {
            **payloads.ticket_identifiers(add["ticket"]),
            "userId": bob.pk,
            "userName": "bob",
        }
        assert received["direction"] == "in" and received["replyEmailId"] == case["reply"].pk
        assert received["body"].startswith("Thanks, it works now.")
        assert set(after_received["ticket"]) == {
            *payloads.TICKET_IDENTIFIERS,
            "receivedCount",
            "lastReceivedTime",
            "substatus",
        }
        assert after_received["ticket"]["receivedCount"] == 2
        assert close["ticket"]["status"] == "closed" and set(close["ticket"]) == {
            *payloads.TICKET_IDENTIFIERS,
            "status",
            "substatus",
            "lastCloseTime",
        }
    # the first email of each conversation, before it was on a ticket
    first_emails = [a.body["emailId"] for a in arrivals if a.event == "email.received"]
    assert one["first"].pk in first_emails and two["first"].pk in first_emails


@pytest.mark.django_db(transaction=True)
def test_after_being_down_for_a_while_the_receiver_gets_everything_once_and_in_order(
    api, alice, bob, forwarding, sender_account, hook, receiver, clock_at_start
):
    receiver.status = 500
    conversation(api, alice, bob, forwarding, 1)
    conversation(api, alice, bob, forwarding, 2)
    assert receiver.arrivals and not receiver.accepted  # it was tried, and it failed
    pending = WebhookDelivery.objects.filter(state="pending").count()
    assert pending == WebhookDelivery.objects.count()
    hook.refresh_from_db()
    assert hook.enabled and hook.consecutive_failures >= 1 and hook.failing_since is not None

    clock.advance(dt.timedelta(minutes=30))  # still down: the sweep tries again, still nothing accepted
    tasks.deliver_due.call_local()
    assert not receiver.accepted

    receiver.status = 200
    for _ in range(30):
        clock.advance(dt.timedelta(minutes=10))
        tasks.deliver_due.call_local()
        if not WebhookDelivery.objects.filter(state="pending").exists():
            break
    accepted = receiver.accepted
    assert len(accepted) == pending == len({a.delivery for a in accepted})
    assert all(a.signature_ok for a in receiver.arrivals)
    assert_in_order_per_key(accepted)
    hook.refresh_from_db()
    assert (hook.consecutive_failures, hook.failing_since) == (0, None) and hook.enabled
    failed_then_delivered = WebhookDelivery.objects.filter(state="delivered", attempts__gt=1)
    assert failed_then_delivered.exists() and all(d.last_status == 200 for d in failed_then_delivered)


@pytest.mark.django_db(transaction=True)
def test_an_endpoint_failing_for_a_day_is_disabled_with_a_notice_and_its_events_fail(
    project, hook, receiver, clock_at_start, alice
):
    from postdesk.tickets.services import create_ticket

    receiver.status = 503
    create_ticket(project, title="Nobody listens", by=alice)
    [d] = WebhookDelivery.objects.all()
    for _ in range(25):
        clock.advance(dt.timedelta(hours=1))
        tasks.deliver_due.call_local()
    d.refresh_from_db()
    hook.refresh_from_db()
    assert d.state == "failed" and d.attempts >= delivery.DISABLE_MIN_FAILURES and d.last_status == 503
    assert not hook.enabled and "failed attempts in a row" in hook.disabled_reason
    assert "HTTP 503" in hook.disabled_reason
    notice = AuditEvent.objects.get(action="webhook.disable")
    assert notice.project == project and notice.actor_name == "system"
    # while disabled nothing new is recorded for it; enabled again, it starts afresh
    create_ticket(project, title="Still nobody", by=alice)
    assert WebhookDelivery.objects.count() == 1
    receiver.status = 200
    with transaction.atomic():
        from postdesk.integrations.services import enable_webhook

        enable_webhook(hook, by=alice)
    create_ticket(project, title="Back", by=alice)
    assert receiver.accepted[-1].body["ticket"]["title"] == "Back"


def test_a_failed_attempt_waits_longer_each_time_and_gives_up_after_24_hours():
    assert [delivery.backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [10, 30, 60, 120]
    assert delivery.backoff(9) == delivery.backoff(50) == dt.timedelta(hours=1)
    total = sum(delivery.backoff(n).total_seconds() for n in range(1, 40))
    assert total > delivery.GIVE_UP_AFTER.total_seconds()


def test_the_signature_is_an_hmac_of_the_timestamp_and_the_body():
    import hashlib
    import hmac

    body = b'{"a":1}'
    expected = hmac.new(b"k" * 16, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert delivery.signature("k" * 16, 1700000000, body) == f"t=1700000000,v1={expected}"


@pytest.mark.django_db
def test_a_later_event_of_a_ticket_waits_while_an_earlier_one_is_pending(project):
    endpoint = WebhookEndpoint.objects.create(
        project=project, url="https://crm.example.com/h", events=["ticket"], secret=SECRET
    )
    now = clock.now()
    later = now + dt.timedelta(minutes=5)

    def row(key, when):
        return WebhookDelivery.objects.create(
            endpoint=endpoint, event="ticket.update", ordering_key=key, payload="{}", next_attempt_at=when
        )

    first_a = row("ticket:1", later)  # failed once, waiting for its retry
    second_a = row("ticket:1", now)
    first_b = row("ticket:2", now)
    unordered = row("", now)
    assert delivery.next_due(endpoint.pk) == first_b
    first_b.state = "delivered"
    first_b.save()
    assert delivery.next_due(endpoint.pk) == unordered
    unordered.state = "delivered"
    unordered.save()
    assert delivery.next_due(endpoint.pk) is None
    first_a.state = "delivered"
    first_a.save()
    assert delivery.next_due(endpoint.pk) == second_a


@pytest.mark.django_db
def test_only_one_run_holds_an_endpoint_at_a_time(project):
    endpoint = WebhookEndpoint.objects.create(
        project=project, url="https://crm.example.com/h", events=["ticket"], secret=SECRET
    )
    assert delivery.claim(endpoint.pk) and not delivery.claim(endpoint.pk)
    delivery.release(endpoint.pk)
    assert delivery.claim(endpoint.pk)
    clock.set_now(clock.now() + delivery.LEASE + dt.timedelta(seconds=1))  # a crashed run's lease runs out
    assert delivery.claim(endpoint.pk)


# After the commit, never during it ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_deliveries_are_written_in_the_transaction_and_sent_only_after_it_commits(
    project, hook, receiver, alice, django_capture_on_commit_callbacks
):
    from postdesk.tickets.services import create_ticket

    with django_capture_on_commit_callbacks(execute=True):  # the commit
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            with transaction.atomic():
                create_ticket(project, title="One", by=alice)
                create_ticket(project, title="Two", by=alice)
                assert WebhookDelivery.objects.filter(state="pending").count() == 2
            assert receiver.arrivals == []
        assert (
            len([c for c in callbacks if isinstance(c, events._Transaction)]) == 1
        )  # one job per transaction
        assert receiver.arrivals == []
    assert [a.body["ticket"]["title"] for a in receiver.arrivals] == ["One", "Two"]


@pytest.mark.django_db(transaction=True)
def test_a_ticket_added_and_changed_in_one_transaction_arrives_as_one_add(project, hook, receiver, alice):
    from postdesk.tickets.services import close_ticket, create_ticket

    with transaction.atomic():
        ticket = create_ticket(project, title="Quick", by=alice)
        close_ticket(ticket, by=alice)
    [arrival] = receiver.arrivals
    assert arrival.event == "ticket.add" and arrival.body["ticket"]["status"] == "closed"
    close_ticket(ticket, substatus="unsuccessful", by=alice)
    assert receiver.arrivals[-1].body["ticket"]["substatus"] == "unsuccessful"


@pytest.mark.django_db
def test_a_rolled_back_change_sends_nothing(
    project, hook, receiver, alice, django_capture_on_commit_callbacks
):
    from postdesk.tickets.services import create_ticket

    with django_capture_on_commit_callbacks(execute=True):
        try:
            with transaction.atomic():
                create_ticket(project, title="Never", by=alice)
                raise RuntimeError("the request failed")
        except RuntimeError:
            pass
    assert not WebhookDelivery.objects.exists() and receiver.arrivals == []


# What is (not) an event -----------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_automatic_responses_and_delivery_reports_are_not_email_events(
    forwarding, project, sender_account, hook, receiver
):
    from postdesk.projects import services as project_services

    project_services.upsert_template(project, "ack", {"subject": "Received", "body": "Thanks!"})
    project_services.update_settings(project, {"auto_response_template": "ack"})
    receive(forwarding, raw_message(message_id="<auto-1@example.com>"))
    assert Email.objects.filter(kind=Kind.AUTO_RESPONSE).count() == 1
    receive(
        forwarding,
        b"From: MAILER-DAEMON@example.com\r\nTo: support@acme.test\r\nSubject: Undelivered Mail\r\n"
        b"Message-ID: <dsn-1@example.com>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nGone.\r\n"
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\n"
        b"Final-Recipient: rfc822; nobody@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--b--\r\n",
        mail_from="",
    )
    assert [a.event for a in receiver.arrivals] == ["email.received"]


@pytest.mark.django_db(transaction=True)
def test_an_endpoint_gets_only_the_events_it_subscribed_to(
    project, receiver, allow_private, forwarding, alice
):
    from postdesk.integrations.services import create_webhook
    from postdesk.tickets.services import create_ticket

    create_webhook(project, url=receiver.url("/emails"), events=["email"], secret=SECRET)
    create_webhook(project, url=receiver.url("/tickets"), events=["ticket"], secret=SECRET)
    receive(forwarding, raw_message(message_id="<only-1@example.com>"))
    create_ticket(project, title="Typed", by=alice)
    assert {(a.path, a.event) for a in receiver.arrivals} == {
        ("/emails", "email.received"),
        ("/tickets", "ticket.add"),
    }


@pytest.mark.django_db(transaction=True)
def test_a_deleted_ticket_is_announced_with_its_identifiers(project, hook, receiver, alice):
    from postdesk.tickets.services import create_ticket

    ticket = create_ticket(project, title="Private matter", by=alice)
    ticket_id = ticket.pk
    with transaction.atomic():
        events.ticket_deleted(ticket)
        ticket.delete()
    last = receiver.arrivals[-1]
    assert last.event == "ticket.delete" and last.body == {
        "action": "delete",
        "ticket": {
            "ticketId": ticket_id,
            "ticketNo": ticket.number,
            "projectId": "101",
            "projectName": "Acme Care",
        },
    }


@pytest.mark.django_db(transaction=True)
def test_the_request_headers_name_the_event_and_the_delivery(project, hook, receiver, alice):
    from postdesk.tickets.services import create_ticket

    create_ticket(project, title="Headers", by=alice)
    [arrival] = receiver.arrivals
    d = WebhookDelivery.objects.get()
    assert arrival.headers["Content-Type"] == "application/json; charset=utf-8"
    assert arrival.headers["User-Agent"].startswith("postdesk-webhooks")
    assert arrival.headers["X-Postdesk-Event"] == "ticket.add" and arrival.delivery == d.pk
    assert arrival.raw == d.payload.encode()
    d.refresh_from_db()
    assert (d.state, d.last_status, d.attempts) == ("delivered", 200, 1) and d.latency_ms is not None


# Private targets (SSRF) -----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_loopback_target_is_refused_unless_the_operator_allows_it(project, receiver, monkeypatch):
    from postdesk.core.errors import Invalid
    from postdesk.integrations.services import create_webhook

    for url in (
        receiver.url(),
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data",
    ):
        with pytest.raises(Invalid, match="POSTDESK_ALLOW_PRIVATE_WEBHOOKS"):
            create_webhook(project, url=url, events=["ticket"], secret=SECRET)
    monkeypatch.setattr(settings, "CONFIG", dataclasses.replace(settings.CONFIG, allow_private_webhooks=True))
    endpoint, _ = create_webhook(project, url=receiver.url(), events=["ticket"], secret=SECRET)
    assert endpoint.pk


@pytest.mark.django_db(transaction=True)
def test_every_delivery_checks_the_address_again(project, hook, receiver, monkeypatch, alice):
    from postdesk.tickets.services import create_ticket

    monkeypatch.setattr(
        settings, "CONFIG", dataclasses.replace(settings.CONFIG, allow_private_webhooks=False)
    )
    create_ticket(project, title="Rebound", by=alice)
    d = WebhookDelivery.objects.get()
    assert receiver.arrivals == []
    assert d.state == "pending" and d.attempts == 1 and d.last_error.startswith("refused: 127.0.0.1")


def test_a_name_that_resolves_to_a_private_address_is_refused_at_delivery(monkeypatch):
    import socket

    def fake(host, port, **kwargs):
        address = {"crm.example.com": "10.0.0.7", "public.example.com": "93.184.216.34"}[host]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    with pytest.raises(delivery.Refused, match="10.0.0.7"):
        delivery.resolve_checked("crm.example.com", 443)
    assert delivery.resolve_checked("public.example.com", 443) == "93.184.216.34"


@pytest.mark.django_db(transaction=True)
def test_redirects_are_not_followed(project, hook, receiver, alice):
    from postdesk.tickets.services import create_ticket

    receiver.status = 302
    receiver.headers_out = {"Location": "http://169.254.169.254/latest/meta-data"}
    create_ticket(project, title="Redirected", by=alice)
    d = WebhookDelivery.objects.get()
    assert len(receiver.arrivals) == 1 and d.state == "pending" and d.last_status == 302
    assert "redirects are not followed" in d.last_error


@pytest.mark.django_db(transaction=True)
def test_a_customer_writing_to_a_closed_ticket_reopens_it_and_the_update_says_so(
    api, alice, forwarding, project, hook, receiver
):
    first = receive(forwarding, raw_message(message_id="<re-1@example.com>", subject="Refund"))
    number = api(alice).post(f"/api/v1/emails/{first.pk}/ticket", {"new": {}}).json()["number"]
    second = receive(forwarding, raw_message(message_id="<re-2@example.com>", subject="Another thing"))
    assert api(alice).post(f"/api/v1/emails/{second.pk}/ticket", {"ticket": number}).status_code == 200
    api(alice).post(f"/api/v1/tickets/{number}/close")
    receive(forwarding, raw_message(message_id="<re-3@example.com>", in_reply_to="<re-1@example.com>"))
    updates = [a.body["ticket"] for a in receiver.arrivals if a.event == "ticket.update"]
    assigned, closed, reopened = updates
    assert (
        assigned["receivedCount"] == 2
        and assigned["lastReceivedTime"]
        and "firstReceivedTime" not in assigned
    )
    assert closed["status"] == "closed"
    assert (reopened["status"], reopened["substatus"], reopened["receivedCount"]) == (
        "park",
        "waiting4agent",
        3,
    )
    assert reopened["lastOpenTime"] and set(reopened) == {
        *payloads.TICKET_IDENTIFIERS,
        "status",
        "substatus",
        "lastOpenTime",
        "receivedCount",
        "lastReceivedTime",
    }


@pytest.mark.django_db
def test_the_compatibility_api_is_described_by_its_own_openapi(client):
    spec = client.get("/v2/openapi.json").json()
    assert {"/v2/projects/{key}/tickets", "/v2/projects/{key}/emails/{year}/{month}"} <= set(spec["paths"])


@pytest.mark.django_db(transaction=True)
def test_https_targets_have_their_certificate_checked(project, alice, allow_private, tmp_path, monkeypatch):
    import ssl

    from postdesk.integrations.services import create_webhook
    from postdesk.integrations.tests.conftest import Receiver
    from postdesk.testing.smtpsink import self_signed
    from postdesk.tickets.services import create_ticket

    cert, key = self_signed(tmp_path)
    with Receiver(tls=(cert, key)) as tls_receiver:
        create_webhook(project, url=tls_receiver.url("/secure"), events=["ticket"], secret=SECRET)
        create_ticket(project, title="Untrusted", by=alice)
        d = WebhookDelivery.objects.get()
        assert tls_receiver.arrivals == [] and "CERTIFICATE_VERIFY_FAILED" in d.last_error
        monkeypatch.setattr(delivery, "_tls_context", ssl.create_default_context(cafile=str(cert)))
        clock.set_now(clock.now() + dt.timedelta(minutes=1))
        tasks.deliver_due.call_local()
        [arrival] = tls_receiver.arrivals
        assert arrival.signature_ok and arrival.body["ticket"]["title"] == "Untrusted"


@pytest.mark.django_db(transaction=True)
def test_a_receiver_that_answers_too_slowly_is_a_failure(project, hook, receiver, alice, monkeypatch):
    from postdesk.tickets.services import create_ticket

    monkeypatch.setattr(delivery, "TOTAL_SECONDS", 0.5)
    receiver.delay = 2
    create_ticket(project, title="Slow", by=alice)
    d = WebhookDelivery.objects.get()
    assert d.state == "pending" and d.last_status is None and "no complete answer within" in d.last_error
    assert d.latency_ms < 1900


def test_outside_tests_a_background_thread_queues_one_job_for_endpoints_woken_together(monkeypatch):
    import threading

    calls, done = [], threading.Event()

    def fake_job(ids):
        calls.append(ids)
        done.set()

    monkeypatch.setattr(tasks, "deliver_webhooks", fake_job)
    waker = events._Waker()
    waker.wake([3, 1])
    waker.wake([2, 3])
    assert done.wait(5) and calls == [[1, 2, 3]]
