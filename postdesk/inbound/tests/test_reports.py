"""Delivery reports: bounces, complaints and auto-replies are recognised and parsed; customer mail is left alone."""

from __future__ import annotations

import email
import email.policy
import json
import time
from collections import Counter
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postdesk.inbound.reports import (
    Report,
    ReportRecipient,
    correlation_keys,
    detect_report,
    is_auto_submitted,
)
from postdesk.testing.corpora import corpus


def parse(raw: bytes | str) -> email.message.Message:
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    return email.message_from_bytes(raw, policy=email.policy.compat32)


def detect(raw: bytes | str) -> Report | None:
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    return detect_report(parse(raw), raw)


# --- the corpus figure ---------------------------------------------------------------------------------------

# expected.json's `class` -> report type. 'delivered' success DSNs are bounces with action 'delivered'.
REPORT_TYPE_OF_CLASS = {
    "hard": "bounce",
    "soft": "bounce",
    "delivered": "bounce",
    "feedback": "complaint",
    "autoreply": "autoreply",
}


def score_corpus_message(report: Report | None, expected: dict) -> list[tuple[str, bool]]:
    """One (class, right?) per expected result of one message.

    The metric, per expected recipient result (``results[i]``):

    * the report type is right (``class`` mapped by REPORT_TYPE_OF_CLASS); no report at all is wrong;
    * the address is right when the expectation names one: with as many ``recipients_heuristic`` addresses as
      results, result i expects address i; with a different number, any of them; the predicted recipient compared is
      the one with that address (none with it is wrong); when no address is named, it is the i-th predicted one;
    * for bounces (hard / soft / delivered) that recipient's ``permanent`` equals "the expected status is 5.x.x"
      (4.x.x and 2.x.x are not permanent), and a 'delivered' result must have action 'delivered'.
      Complaints and auto-replies carry no status, so type (and address when named) decide.
    """
    results = expected["results"]
    named = [a.lower() for a in expected["recipients_heuristic"]]
    scored = []
    for index, result in enumerate(results):
        cls = result["class"]
        if report is None or report.type != REPORT_TYPE_OF_CLASS[cls]:
            scored.append((cls, False))
            continue
        recipients = report.recipients
        if named:
            wanted = {named[index]} if len(named) == len(results) else set(named)
            if len(named) != len(results) and index < len(recipients) and recipients[index].address in wanted:
                recipient = recipients[index]
            else:
                recipient = next((r for r in recipients if r.address in wanted), None)
            if recipient is None:
                scored.append((cls, False))
                continue
        else:
            recipient = recipients[index] if index < len(recipients) else None
        if cls in ("hard", "soft", "delivered"):
            if recipient is None or recipient.permanent != result["status"].startswith("5"):
                scored.append((cls, False))
                continue
            if cls == "delivered" and recipient.action != "delivered":
                scored.append((cls, False))
                continue
        scored.append((cls, True))
    return scored


@pytest.mark.corpus
def test_it_gets_at_least_97_percent_of_the_bounces_corpus_right():
    folder = corpus("bounces")
    expected = json.loads((folder / "expected.json").read_text())
    right, total = Counter(), Counter()
    misses = []
    for name, expectation in sorted(expected.items()):
        raw = (folder / name).read_bytes()
        report = detect_report(parse(raw), raw)
        for cls, ok in score_corpus_message(report, expectation):
            total[cls] += 1
            right[cls] += ok
            if not ok:
                misses.append(name)
    figure = sum(right.values()) / sum(total.values())
    per_class = ", ".join(f"{cls} {right[cls]}/{total[cls]}" for cls in sorted(total))
    print(
        f"\nbounces corpus: {sum(right.values())}/{sum(total.values())} = {figure:.2%} ({per_class}); misses: {misses}"
    )
    assert figure >= 0.97, (figure, misses)


# --- RFC 3464 ------------------------------------------------------------------------------------------------

DSN = """\
From: Mail Delivery System <MAILER-DAEMON@mx.example.net>
To: bounces+4711@postdesk.example
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="BOUND"

--BOUND
Content-Type: text/plain

This is the mail system at host mx.example.net.

<alice@example.org>: host mail.example.org[192.0.2.1] said: 550 5.1.1 User unknown

--BOUND
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
Arrival-Date: Mon, 1 Jan 2024 10:00:00 +0000

Final-Recipient: rfc822; Alice@Example.ORG
Original-Recipient: rfc822; alice@example.org
Action: failed
Status: 5.1.1
Remote-MTA: dns; mail.example.org
Diagnostic-Code: smtp; 550 5.1.1 <alice@example.org>: Recipient address
    rejected: User unknown in local recipient table

Final-Recipient: rfc822; bob@example.com
Action: delayed
Status: 4.4.7
Diagnostic-Code: smtp; 451 4.4.7 Try again later

Final-Recipient: rfc822; carol@example.net
Action: delivered
Status: 2.0.0

--BOUND
Content-Type: message/rfc822

From: Support <support@postdesk.example>
To: alice@example.org, bob@example.com, carol@example.net
Subject: Your ticket #42
Message-ID: <ticket-42.reply-7@postdesk.example>
X-Postdesk-Id: em_7
Return-Path: <bounces+4711@postdesk.example>

Hello!
--BOUND--
"""


def test_it_reads_each_recipient_of_an_rfc3464_report():
    report = detect(DSN)
    assert report is not None and report.type == "bounce"
    alice, bob, carol = report.recipients
    assert alice == ReportRecipient(
        address="alice@example.org",
        status="5.1.1",
        action="failed",
        permanent=True,
        diagnostic="550 5.1.1 <alice@example.org>: Recipient address rejected: User unknown in local recipient table",
    )
    assert (bob.address, bob.status, bob.action, bob.permanent) == (
        "bob@example.com",
        "4.4.7",
        "delayed",
        False,
    )
    assert (carol.address, carol.action, carol.permanent) == ("carol@example.net", "delivered", False)


def test_it_keeps_the_returned_headers_that_tie_the_report_to_our_email():
    report = detect(DSN)
    assert report.original_message_id == "<ticket-42.reply-7@postdesk.example>"
    assert report.original_headers["x-postdesk-id"] == "em_7"
    assert report.original_headers["return-path"] == "<bounces+4711@postdesk.example>"
    assert report.original_headers["subject"] == "Your ticket #42"


def test_it_lists_the_keys_that_match_a_report_to_our_email():
    keys = correlation_keys(detect(DSN), parse(DSN))
    assert keys == {
        "postdesk_ids": ["em_7"],
        "message_ids": ["<ticket-42.reply-7@postdesk.example>"],
        "addresses": ["bounces+4711@postdesk.example"],
    }


def test_it_refines_a_generic_dsn_status_with_the_one_in_the_diagnostic():
    raw = DSN.replace("Status: 5.1.1", "Status: 5.0.0 (permanent failure)")
    assert detect(raw).recipients[0].status == "5.1.1"


def test_it_reports_json_ready_dicts():
    data = detect(DSN).as_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["type"] == "bounce"
    assert data["recipients"][0] == {
        "address": "alice@example.org",
        "status": "5.1.1",
        "action": "failed",
        "permanent": True,
        "diagnostic": data["recipients"][0]["diagnostic"],
    }


def test_it_treats_a_success_notification_as_a_delivered_bounce_report():
    raw = DSN.replace("Action: failed\nStatus: 5.1.1", "Action: delivered\nStatus: 2.0.0")
    alice = detect(raw).recipients[0]
    assert (alice.action, alice.permanent, alice.status) == ("delivered", False, "2.0.0")


def test_it_parses_the_raw_bytes_when_no_tree_is_given():
    report = detect_report(None, DSN.encode())
    assert report is not None and report.recipients[0].address == "alice@example.org"


def test_it_reads_dsn_fields_when_the_mime_boundary_is_wrong():
    raw = DSN.replace('boundary="BOUND"', 'boundary="OTHER"')
    report = detect(raw)
    assert [r.address for r in report.recipients] == [
        "alice@example.org",
        "bob@example.com",
        "carol@example.net",
    ]
    assert report.original_message_id == "<ticket-42.reply-7@postdesk.example>"


# --- non-standard bounces -----------------------------------------------------------------------------------

EXIM_STYLE = """\
From: Mail Delivery System <Mailer-Daemon@relay.example.net>
To: support@postdesk.example
Subject: Mail delivery failed: returning message to sender
Auto-Submitted: auto-replied

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  dave@example.org
    host mx.example.org [192.0.2.7]
    SMTP error from remote mail server after RCPT TO:<dave@example.org>:
    552 5.2.2 Mailbox full
  erin@example.com
    host mx.example.com [192.0.2.8]
    SMTP error from remote mail server after RCPT TO:<erin@example.com>:
    451 4.3.0 Temporary local problem

------ This is a copy of the message, including all the headers. ------

Return-path: <support@postdesk.example>
Message-ID: <pasted-1@postdesk.example>
From: support@postdesk.example
To: dave@example.org, erin@example.com
Subject: Re: order

Hi Dave
"""


def test_it_reads_a_body_only_bounce_with_the_original_pasted_inline():
    report = detect(EXIM_STYLE)
    assert report.type == "bounce"
    dave, erin = report.recipients
    assert (dave.address, dave.status, dave.permanent) == ("dave@example.org", "5.2.2", True)
    assert (erin.address, erin.status, erin.permanent) == ("erin@example.com", "4.3.0", False)
    assert report.original_message_id == "<pasted-1@postdesk.example>"


def test_it_reads_a_qmail_style_bounce():
    raw = """\
From: MAILER-DAEMON@mx.example.org
To: support@postdesk.example
Subject: failure notice

Hi. This is the qmail-send program at mx.example.org.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<frank@example.org>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

Return-Path: <support@postdesk.example>
Message-ID: <q-1@postdesk.example>
To: frank@example.org
"""
    report = detect(raw)
    (frank,) = report.recipients
    assert (frank.address, frank.status, frank.permanent, frank.action) == (
        "frank@example.org",
        "5.1.1",
        True,
        "failed",
    )


def test_it_reads_a_delay_warning_as_temporary():
    raw = """\
From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: support@postdesk.example
Subject: Delivery Status Notification (Delay)

THIS IS A WARNING MESSAGE ONLY.
YOU DO NOT NEED TO RESEND YOUR MESSAGE.

Delivery to the following recipient has been delayed:

     grace@example.org

Message will be retried for 2 more day(s)

Technical details of temporary failure:
The recipient server did not accept our requests to connect.
"""
    (grace,) = detect(raw).recipients
    assert (grace.address, grace.action, grace.permanent) == ("grace@example.org", "delayed", False)


def test_it_derives_permanence_from_a_bare_smtp_reply_code():
    raw = """\
From: postmaster@mail.example.org
To: support@postdesk.example
Subject: Undeliverable Mail

Unable to deliver message to: <heidi@example.org>
Delivery failed for the following reason:
Server mx.example.org[192.0.2.9] failed with: 550 No such user here
"""
    (heidi,) = detect(raw).recipients
    assert (heidi.address, heidi.status, heidi.permanent) == ("heidi@example.org", None, True)


def test_it_prefers_the_failed_recipients_header_when_there_is_one():
    raw = EXIM_STYLE.replace("Auto-Submitted: auto-replied\n", "X-Failed-Recipients: dave@example.org\n")
    assert [r.address for r in detect(raw).recipients] == ["dave@example.org"]


def test_it_reads_a_bounce_wrapped_inside_another_bounce():
    outer = MIMEMultipart("mixed")
    outer["From"] = "MAILER-DAEMON@gateway.example.net"
    outer["To"] = "support@postdesk.example"
    outer["Subject"] = "Returned mail: User unknown"
    outer.attach(
        MIMEText("The original message was received at Mon\n\n--- The following addresses had errors ---\n")
    )
    wrapper = email.message.Message()
    wrapper["Content-Type"] = "message/rfc822"
    wrapper.set_payload([parse(DSN)])
    outer.attach(wrapper)
    report = detect_report(parse(outer.as_bytes()))
    assert report.type == "bounce"
    assert report.recipients[0].address == "alice@example.org"


@pytest.mark.parametrize(
    ("charset", "text", "address"),
    [
        (
            "iso-2022-jp",
            "次のあて先へのメッセージはエラーのため送信できませんでした。\n\n<ivan@example.jp>\n\n"
            "送信先のメールボックスが一杯です。\n",
            "ivan@example.jp",
        ),
        (
            "koi8-r",
            "К сожалению, Ваше письмо не может быть доставлено одному или нескольким получателям:\n\n"
            "  judy@example.ru\n    550 5.1.1 Пользователь не найден\n",
            "judy@example.ru",
        ),
        (
            "iso-8859-1",
            "Ihre Nachricht konnte nicht zugestellt werden an:\n\n  <karl@example.de>: Empfänger unbekannt\n"
            "  550 5.1.1 Benutzer unbekannt\n",
            "karl@example.de",
        ),
    ],
)
def test_it_reads_bounce_texts_in_other_languages_and_charsets(charset, text, address):
    message = MIMEText(text, "plain", charset)
    message["From"] = "MAILER-DAEMON@mx.example"
    message["To"] = "support@postdesk.example"
    message["Subject"] = email.header.Header("Returned mail / Unzustellbar / 配信エラー", "utf-8").encode()
    report = detect_report(parse(message.as_bytes()))
    assert report is not None and report.type == "bounce"
    assert report.recipients[0].address == address
    assert report.recipients[0].permanent is True


# --- complaints ----------------------------------------------------------------------------------------------

ARF = """\
From: feedback@fbl.example.net
To: abuse@postdesk.example
Subject: Abuse report
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="ARF"

--ARF
Content-Type: text/plain

This is an email abuse report for an email message received from IP 192.0.2.1.
--ARF
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: ExampleFBL/1.0
Version: 1
Original-Mail-From: <bounces+88@postdesk.example>
Original-Rcpt-To: <Linda@Example.com>
Arrival-Date: Mon, 1 Jan 2024 10:00:00 +0000
Source-IP: 192.0.2.1

--ARF
Content-Type: text/rfc822-headers

From: Newsletter <news@postdesk.example>
To: linda@example.com
Subject: Our offers
Message-ID: <campaign-3.88@postdesk.example>
X-Postdesk-Id: em_88
--ARF--
"""


def test_it_reads_an_arf_complaint():
    report = detect(ARF)
    assert report.type == "complaint"
    assert report.feedback_type == "abuse"
    assert [r.address for r in report.recipients] == ["linda@example.com"]
    assert report.original_message_id == "<campaign-3.88@postdesk.example>"
    assert report.original_headers["x-postdesk-id"] == "em_88"


def test_it_reads_provider_json_notifications():
    event = {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": "Permanent",
            "bouncedRecipients": [
                {
                    "emailAddress": "mike@example.org",
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": "smtp; 550",
                }
            ],
        },
        "mail": {"commonHeaders": {"subject": "Hi", "messageId": "<ses-1@postdesk.example>"}},
    }
    raw = (
        f"From: SES <no-reply@sns.amazonaws.com>\nSubject: AWS Notification Message\n\n{json.dumps(event)}\n"
    )
    report = detect(raw)
    assert report.type == "bounce"
    assert (report.recipients[0].address, report.recipients[0].permanent) == ("mike@example.org", True)
    assert report.original_message_id == "<ses-1@postdesk.example>"
    complaint = {
        "notificationType": "Complaint",
        "complaint": {"complainedRecipients": [{"emailAddress": "n@x.io"}]},
    }
    report = detect(
        f"From: no-reply@sns.amazonaws.com\nSubject: AWS Notification Message\n\n{json.dumps(complaint)}"
    )
    assert (report.type, report.recipients[0].address) == ("complaint", "n@x.io")


# --- auto-replies --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "Auto-Submitted: auto-replied",
        "X-Autoreply: yes",
        "X-Autorespond: Out of office",
        "Precedence: auto_reply",
    ],
)
def test_it_recognises_auto_replies_by_their_headers(header):
    raw = f"""\
From: Nina <nina@example.org>
To: support@postdesk.example
Subject: Re: Your ticket #42
In-Reply-To: <ticket-42.reply-7@postdesk.example>
{header}

I am away until Monday.
"""
    report = detect(raw)
    assert report.type == "autoreply"
    assert report.recipients == [ReportRecipient(address="nina@example.org")]
    assert report.original_message_id == "<ticket-42.reply-7@postdesk.example>"
    assert correlation_keys(report, parse(raw))["message_ids"] == ["<ticket-42.reply-7@postdesk.example>"]


@pytest.mark.parametrize(
    "subject",
    [
        "Out of Office: Your ticket",
        "Automatic reply: Your ticket",
        "Abwesenheitsnotiz: Ihr Ticket",
        "自動返信: チケット",
    ],
)
def test_it_recognises_out_of_office_subjects(subject):
    raw = f"From: oscar@example.org\nTo: support@postdesk.example\nSubject: {subject}\n\nBack on Monday.\n"
    assert detect(raw.encode()).type == "autoreply"


def test_it_treats_a_helpdesk_acknowledgement_as_an_auto_reply():
    raw = """\
From: help@vendor.example
To: support@postdesk.example
Subject: [#991] We received your request
Auto-Submitted: auto-generated
In-Reply-To: <ticket-42.reply-7@postdesk.example>

Thank you, we will get back to you.
"""
    assert detect(raw).type == "autoreply"


def test_it_leaves_a_generated_notification_that_answers_nothing_alone():
    raw = """\
From: alerts@bank.example
To: support@postdesk.example
Subject: Your statement is ready
Auto-Submitted: auto-generated

Log in to read it.
"""
    assert detect(raw) is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ("Auto-Submitted: auto-generated", True),
        ("Auto-Submitted: auto-replied; owner-email=x@example.org", True),
        ("Auto-Submitted: no", False),
        ("X-Autoreply: yes", True),
        ("X-Autorespond: vacation", True),
        ("Precedence: auto_reply", True),
        ("Return-Path: <>", True),
        ("Precedence: bulk", False),
        ("Return-Path: <someone@example.org>", False),
        ("", False),
    ],
)
def test_it_tells_machine_submitted_mail_for_the_loop_guard(headers, expected):
    raw = f"From: someone@example.org\nSubject: hi\n{headers}\n\nbody\n"
    assert is_auto_submitted(parse(raw)) is expected


# --- customer mail stays customer mail -----------------------------------------------------------------------


def test_it_leaves_a_customer_message_that_mentions_undeliverable_alone():
    raw = """\
From: Olga Customer <olga@example.org>
To: support@postdesk.example
Subject: Undeliverable parcel - order 1234
Message-ID: <olga-1@example.org>

Hello, your courier says my parcel was undeliverable and could not be delivered to my address.
The tracking page shows "550 - address unknown". Delivery failed twice. What can I do?
"""
    assert detect(raw) is None


def test_it_leaves_a_customer_forwarding_a_bounce_alone():
    outer = MIMEMultipart("mixed")
    outer["From"] = "Paul <paul@example.org>"
    outer["To"] = "support@postdesk.example"
    outer["Subject"] = "Fwd: Undelivered Mail Returned to Sender"
    outer.attach(MIMEText("Your emails bounce, see attached. Please fix!"))
    wrapper = email.message.Message()
    wrapper["Content-Type"] = "message/rfc822"
    wrapper.set_payload([parse(DSN)])
    outer.attach(wrapper)
    assert detect_report(parse(outer.as_bytes())) is None


def test_it_leaves_a_person_writing_from_a_postmaster_address_alone():
    raw = """\
From: Rita <postmaster@customer.example>
To: support@postdesk.example
Subject: Re: Your ticket #42

Our user unknown to you is rita@customer.example, please use that one.

-----Original Message-----
From: support@postdesk.example
To: postmaster@customer.example
Subject: Your ticket #42
"""
    assert detect(raw) is None


def test_it_leaves_a_plain_customer_reply_alone():
    raw = "From: quinn@example.org\nTo: support@postdesk.example\nSubject: Re: Your ticket #42\n\nThanks, solved!\n"
    assert detect(raw) is None


# --- hostile and broken input --------------------------------------------------------------------------------

HOSTILE_BODIES = {
    "a huge body": "x" * 5_000_000,
    "a sea of spaces": " " * 5_000_000 + "x",
    "endless dashes": "-" * 5_000_000,
    "endless addresses": "<a@b.example>: " * 300_000,
    "endless codes": "550 5.1.1 " * 500_000,
    "endless dsn fields": "Final-Recipient: rfc822; a@b.example\nStatus: 5.1.1\n" * 100_000,
    "one enormous line": "Original message " + "\t" * 3_000_000 + "x",
}


@pytest.mark.parametrize("body", list(HOSTILE_BODIES.values()), ids=list(HOSTILE_BODIES))
def test_it_returns_quickly_on_hostile_bodies(body):
    raw = f"From: MAILER-DAEMON@example.org\nSubject: Undelivered Mail Returned to Sender\n\n{body}".encode()
    message = parse(raw)
    started = time.perf_counter()
    detect_report(message, raw)
    assert time.perf_counter() - started < 3


def test_it_walks_a_deeply_nested_message_quickly_and_without_recursion():
    root = current = MIMEMultipart("mixed")
    root["From"] = "MAILER-DAEMON@example.org"
    root["Subject"] = "Undelivered Mail Returned to Sender"
    for _ in range(5000):
        child = MIMEMultipart("mixed")
        current.attach(child)
        current = child
    current.attach(MIMEText("<zoe@example.org>: 550 5.1.1 user unknown"))
    started = time.perf_counter()
    detect_report(root)
    assert time.perf_counter() - started < 3


def test_it_copes_with_many_parts_and_many_recipients():
    parts = "".join(
        f"--q\nContent-Type: text/plain\n\n<u{i}@x.example>: 550 5.1.1 unknown\n" for i in range(5000)
    )
    raw = f"From: MAILER-DAEMON@example.org\nSubject: failure notice\nContent-Type: multipart/mixed; boundary=q\n\n{parts}--q--\n"
    started = time.perf_counter()
    report = detect(raw)
    assert time.perf_counter() - started < 3
    assert report.type == "bounce" and report.recipients


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe" * 1000,
        b"Content-Type: multipart/report; report-type=delivery-status\n\nno boundary at all",
        b"Content-Type: message/delivery-status\n\n\n\n",
        b"Content-Type: text/plain; charset=no-such-charset\nFrom: MAILER-DAEMON@x\n\n\xe9\xe8 550 5.1.1 <a@b.c>",
        b"Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Transfer-Encoding: base64\n\n!!!notbase64###\n--x--",
        b"From: =?utf-8?B?broken?= <MAILER-DAEMON@x>\nSubject: =?x-unknown?Q?=FF?=\n\nUser unknown",
    ],
)
def test_it_never_raises_on_broken_input(raw):
    report = detect_report(parse(raw), raw)
    assert report is None or isinstance(report, Report)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_it_never_raises_on_random_bytes(data):
    raw = b"From: MAILER-DAEMON@example.org\nContent-Type: multipart/report; boundary=b\n\n--b\n" + data
    report = detect_report(parse(raw), raw)
    assert report is None or isinstance(report, Report)
