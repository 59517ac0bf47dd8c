"""Processing of stored messages: threads (any arrival order), tickets, queues by language, delivery reports,
automatic responses and their loop guards."""

import random

import pytest

from postdesk.core import clock
from postdesk.emails.models import DeliveryEvent, Email, EventKind, Kind, Status
from postdesk.inbound import processing
from postdesk.inbound.models import AutoResponseLog
from postdesk.outbound import sender
from postdesk.projects import services as project_services
from postdesk.testing.factories import raw_message, receive

pytestmark = pytest.mark.django_db


def store_all(account, raws):
    from django.db import transaction

    from postdesk.inbound.intake import Delivery, store

    ids = []
    with transaction.atomic():
        for raw in raws:
            ids += store(
                Delivery(
                    raw=raw, mail_from="customer@example.com", rcpt_to=[account.address], accounts=[account]
                )
            ).ids
    return ids


def chain(n=4):
    """A conversation: each message references all earlier ones."""
    raws, refs = [], []
    for i in range(n):
        mid = f"<chain-{i}-{random.random()}@example.com>"
        raws.append(
            raw_message(
                subject="Re: Order" if i else "Order",
                message_id=mid,
                in_reply_to=refs[-1] if refs else None,
                references=" ".join(refs) or None,
                body=f"Message number {i} about my order and the delivery.",
            )
        )
        refs.append(mid)
    return raws


@pytest.mark.parametrize("batch_size", [1, 2, 64])
def test_a_conversation_is_one_thread_whatever_the_arrival_order_and_batching(forwarding, batch_size):
    raws = chain(5)
    random.Random(batch_size).shuffle(raws)
    ids = store_all(forwarding, raws)
    for start in range(0, len(ids), batch_size):
        processing.process(ids[start : start + batch_size])
    assert Email.objects.count() == 5
    assert Email.objects.values("thread").distinct().count() == 1


def test_a_late_parent_merges_the_threads_of_its_children(forwarding):
    parent, child_a, child_b = "<p-1@example.com>", "<a-1@example.com>", "<b-1@example.com>"
    receive(forwarding, raw_message(message_id=child_a, in_reply_to=parent, references=parent))
    receive(forwarding, raw_message(message_id=child_b, references=f"<unrelated@x.com> {parent}"))
    receive(forwarding, raw_message(message_id=parent))
    assert Email.objects.values("thread").distinct().count() == 1


def test_unrelated_messages_with_the_same_subject_stay_apart(forwarding):
    receive(forwarding, raw_message(subject="Help", sender="a@example.com"))
    receive(forwarding, raw_message(subject="Help", sender="b@example.com"))
    assert Email.objects.values("thread").distinct().count() == 2


def _ticket_for(email, user):
    from postdesk.tickets.services import assign_email

    return assign_email(email, title="Order", by=user)


def test_a_reply_in_a_ticketed_thread_joins_the_ticket_and_is_new_to_its_owner(forwarding, alice):
    first = receive(forwarding, raw_message(message_id="<t-1@example.com>"))
    ticket = _ticket_for(first, alice)
    reply = receive(forwarding, raw_message(message_id="<t-2@example.com>", in_reply_to="<t-1@example.com>"))
    assert reply.ticket == ticket
    ticket.refresh_from_db()
    assert ticket.unread and ticket.received_count == 2


def test_copied_thread_headers_from_a_stranger_do_not_join_the_ticket(forwarding, alice):
    first = receive(forwarding, raw_message(message_id="<s-1@example.com>"))
    ticket = _ticket_for(first, alice)
    spoof = receive(
        forwarding,
        raw_message(
            message_id="<s-2@evil.test>",
            in_reply_to="<s-1@example.com>",
            references="<s-1@example.com>",
            sender="attacker@evil.test",
            subject=f"Re: Order [{ticket.number}]",
        ),
    )
    assert spoof.ticket is None and spoof.thread_id != first.thread_id
    assert spoof.status == Status.NEW  # it is a new email for the queue, not part of the ticket


def test_the_ticket_number_in_the_subject_joins_the_ticket_when_the_sender_takes_part(forwarding, alice):
    first = receive(forwarding, raw_message(sender="carla@example.com"))
    ticket = _ticket_for(first, alice)
    again = receive(
        forwarding, raw_message(sender="carla@example.com", subject=f"Another question [{ticket.number}]")
    )
    stranger = receive(forwarding, raw_message(sender="eve@example.com", subject=f"Hi [{ticket.number}]"))
    assert again.ticket == ticket and stranger.ticket is None


def test_emails_go_to_the_queue_of_their_language(forwarding, project):
    hungarian = receive(
        forwarding,
        raw_message(
            body="Jó napot kívánok! A megrendelt csomagom még mindig nem "
            "érkezett meg, kérem, nézzék meg, mi történt vele."
        ),
    )
    english = receive(
        forwarding,
        raw_message(
            body="Good morning, my parcel still has not arrived. Could you please check what happened to it?"
        ),
    )
    czech = receive(
        forwarding,
        raw_message(
            body="Dobrý den, moje zásilka stále nedorazila. Mohli byste prosím zjistit, co se s ní stalo?"
        ),
    )
    assert (hungarian.language, hungarian.queue.name) == ("hu", "Magyar")
    assert (english.language, english.queue.name) == ("en", "English")
    assert (czech.language, czech.queue.name) == ("cs", "Default")  # no Czech queue: the default queue


def test_a_reply_above_a_quote_in_another_language_goes_to_the_replys_language(forwarding):
    body = (
        "Köszönöm, megkaptam a csomagot, minden rendben van vele.\r\n\r\n"
        "On Thu, 26 Nov 2026 at 10:00, Acme Support <support@acme.test> wrote:\r\n"
        "> Dear customer, your parcel has been shipped today and should arrive within two days.\r\n"
        "> Please let us know if anything is wrong with your order or the delivery.\r\n"
    )
    assert receive(forwarding, raw_message(body=body)).language == "hu"


def test_without_email_queues_everything_goes_to_the_default_queue(forwarding, project):
    project_services.update_settings(project, {"email_queue": False})
    email = receive(forwarding, raw_message(body="Good morning, my parcel still has not arrived yet, sadly."))
    assert email.language == "en" and email.queue.is_default


def test_without_language_detection_the_language_stays_blank(forwarding, project):
    project_services.update_settings(project, {"email_queue": False, "language_detection": False})
    email = receive(forwarding, raw_message(body="Good morning, my parcel still has not arrived yet, sadly."))
    assert email.language == "" and email.queue.is_default


def test_an_unparseable_message_is_kept_raw_and_flagged(forwarding):
    raw = b"\xff\xfe\x00garbage without any header structure\x00\r\n"
    email = receive(forwarding, raw)
    assert email is not None and bytes(email.raw.data) == raw
    assert email.status in (Status.UNPARSEABLE, Status.NEW)


# Delivery reports -----------------------------------------------------------------------------------------------

DSN = """From: MAILER-DAEMON@mx.example.com\r
To: {rcpt}\r
Subject: Undelivered Mail Returned to Sender\r
Message-ID: <dsn-{n}@mx.example.com>\r
Auto-Submitted: auto-replied\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r
\r
--b\r
Content-Type: text/plain\r
\r
This is the mail system. Your message could not be delivered.\r
--b\r
Content-Type: message/delivery-status\r
\r
Reporting-MTA: dns; mx.example.com\r
\r
Final-Recipient: rfc822; customer@example.com\r
Action: failed\r
Status: 5.1.1\r
Diagnostic-Code: smtp; 550 5.1.1 User unknown\r
--b\r
Content-Type: text/rfc822-headers\r
\r
Message-ID: {mid}\r
From: support@acme.test\r
To: customer@example.com\r
Subject: Your order\r
--b--\r
"""


def _sent_reply(project, sender_account):
    from postdesk.outbound.services import queue_email

    email = queue_email(
        project=project,
        account=sender_account,
        kind=Kind.AGENT_REPLY,
        to=["customer@example.com"],
        subject="Your order",
        text="It ships today.",
    )
    sender.deliver([email.pk])
    return email


def test_a_bounce_to_the_verp_address_becomes_an_event_on_the_outbound_email(
    forwarding, project, sender_account
):
    out = _sent_reply(project, sender_account)
    out.refresh_from_db()
    report = receive(
        forwarding,
        DSN.format(rcpt=out.return_path, n=1, mid="<unknown@x>").encode(),
        mail_from="",
        rcpt=out.return_path,
    )
    assert report.status == Status.REPORT and report.kind == Kind.DELIVERY_REPORT
    assert report.report["type"] == "bounce" and report.report["recipients"][0]["permanent"] is True
    assert DeliveryEvent.objects.filter(email=out, kind=EventKind.BOUNCED).exists()
    assert report.queue is None  # never in an agent's list


def test_a_bounce_is_matched_by_the_returned_message_id_too(forwarding, project, sender_account):
    out = _sent_reply(project, sender_account)
    receive(forwarding, DSN.format(rcpt="support@acme.test", n=2, mid=out.message_id).encode(), mail_from="")
    assert DeliveryEvent.objects.filter(email=out, kind=EventKind.BOUNCED).exists()


def test_an_unmatched_report_is_logged_with_its_parsed_report(forwarding):
    report = receive(
        forwarding, DSN.format(rcpt="support@acme.test", n=3, mid="<nothing@x>").encode(), mail_from=""
    )
    assert (
        report.status == Status.REPORT and report.report["recipients"][0]["address"] == "customer@example.com"
    )
    assert not DeliveryEvent.objects.exists()


# Automatic responses ------------------------------------------------------------------------------------------


@pytest.fixture
def auto(project, sender_account):
    project_services.upsert_template(
        project, "ack", {"subject": "Received: {{ subject }}", "body": "Thanks!"}
    )
    project_services.update_settings(project, {"auto_response_template": "ack"})
    return project


def auto_responses():
    return list(Email.objects.filter(kind=Kind.AUTO_RESPONSE))


def test_a_new_thread_gets_one_automatic_response(forwarding, auto):
    first = receive(forwarding, raw_message(message_id="<ar-1@example.com>", subject="Refund"))
    receive(forwarding, raw_message(message_id="<ar-2@example.com>", in_reply_to="<ar-1@example.com>"))
    [response] = auto_responses()
    assert response.to == ["customer@example.com"] and response.subject == "Received: Refund"
    assert response.return_path == "" and response.in_reply_to == first.message_id
    raw = bytes(response.raw.data)
    assert b"Auto-Submitted: auto-replied" in raw


@pytest.mark.parametrize(
    "headers, mail_from, sender",
    [
        ({"Auto-Submitted": "auto-replied"}, "customer@example.com", "customer@example.com"),
        ({"X-Autoreply": "yes"}, "customer@example.com", "customer@example.com"),
        ({"Precedence": "bulk"}, "customer@example.com", "customer@example.com"),
        ({"List-Id": "<news.example.com>"}, "customer@example.com", "customer@example.com"),
        ({"X-Auto-Response-Suppress": "All"}, "customer@example.com", "customer@example.com"),
        ({}, "", "customer@example.com"),
        ({}, "mailer-daemon@example.com", "mailer-daemon@example.com"),
        ({}, "support@acme.test", "support@acme.test"),
    ],
    ids=[
        "auto-submitted",
        "x-autoreply",
        "bulk",
        "list",
        "suppress",
        "null-return-path",
        "daemon",
        "own-address",
    ],
)
def test_no_automatic_response_to_robots_lists_or_ourselves(forwarding, auto, headers, mail_from, sender):
    receive(forwarding, raw_message(headers=headers, sender=sender), mail_from=mail_from)
    assert auto_responses() == []


def test_at_most_three_automatic_responses_per_sender_per_day(forwarding, auto):
    for i in range(5):
        receive(forwarding, raw_message(subject=f"Question {i}"))
    assert len(auto_responses()) == 3
    assert AutoResponseLog.objects.count() == 3


@pytest.mark.parametrize("own_address_guard", [True, False], ids=["all-guards", "without-own-address-guard"])
def test_two_projects_answering_each_other_exchange_one_automatic_message_each_way(
    users, smtp_sink, monkeypatch, own_address_guard
):
    """The loop test: two postdesk projects with automatic responses mail each other (through a real SMTP relay and
    their forwarding addresses). Both live in this installation, so each knows the other's address as its own; the
    second run switches that guard off, as if they were two installations, and the other guards still hold."""
    from postdesk.inbound import rules

    if not own_address_guard:
        monkeypatch.setattr(rules.OwnAddress, "check", lambda self, ctx: False)
    from postdesk.mailboxes.services import upsert_account
    from postdesk.projects.services import (
        create_project,
        set_sender_accounts,
        update_settings,
        upsert_template,
    )

    projects, inboxes = {}, {}
    for key, address in (("A1", "help@alpha.test"), ("B1", "care@beta.test")):
        project = create_project(key=key, name=key)
        upsert_template(project, "ack", {"subject": "We got it", "body": "Thanks, we will answer soon."})
        update_settings(project, {"auto_response_template": "ack"})
        inbox, _ = upsert_account(
            {"name": f"{key}-in", "protocol": "forwarding", "address": address}, project=project
        )
        out, _ = upsert_account(
            {
                "name": f"{key}-out",
                "protocol": "smtp",
                "address": address,
                "host": "127.0.0.1",
                "port": smtp_sink.port,
                "security": "none",
                "auth": "none",
            }
        )
        set_sender_accounts(project, [out])
        projects[key], inboxes[address] = project, inbox
    # a person writes to A from B's address (as if B's staff wrote): A auto-responds to B ...
    receive(
        inboxes["help@alpha.test"],
        raw_message(sender="care@beta.test", to="help@alpha.test"),
        mail_from="care@beta.test",
    )
    # ... and every message the relay carries is delivered to its recipient's project, until nothing moves
    delivered = 0
    for _ in range(10):
        sender.deliver(sender.due_ids())
        fresh = smtp_sink.messages[delivered:]
        if not fresh:
            break
        delivered += len(fresh)
        for message in fresh:
            for rcpt in message.rcpt_tos:
                if rcpt in inboxes:
                    receive(
                        inboxes[rcpt],
                        message.data.replace(b"\n", b"\r\n") if b"\r\n" not in message.data else message.data,
                        mail_from=message.mail_from,
                        rcpt=rcpt,
                    )
    by_project = {
        key: Email.objects.filter(project=p, kind=Kind.AUTO_RESPONSE).count() for key, p in projects.items()
    }
    assert by_project["A1"] <= 1 and by_project["B1"] <= 1
    if not own_address_guard:
        assert by_project == {"A1": 1, "B1": 0}  # A answered once; B saw Auto-Submitted and stayed quiet


def test_an_out_of_office_robot_gets_at_most_one_automatic_response(forwarding, auto):
    for i in range(4):
        robot = raw_message(
            sender="traveller@example.com",
            subject=f"Out of office: Re: Received {i}",
            headers={"Auto-Submitted": "auto-replied"} if i else {},
            body="I am out of the office until Monday and will answer when I am back.",
        )
        receive(forwarding, robot, mail_from="traveller@example.com")
        clock.set_now(None)
    assert len(auto_responses()) <= 1
