"""Hostile input catalogue, through the whole receive path (intake and processing, then the pages and the API that
show the result): each test names the input and the safe behaviour. HTML, JavaScript and SVG in subjects, names,
bodies and attachment names are covered in emails/tests/test_views.py and, in a real browser,
emails/tests/test_browser_hostile.py; MIME bombs at the parser in inbound/tests/test_mime.py."""

from __future__ import annotations

import base64
import json
import re
import socket
import time

import pytest
from django.conf import settings
from django.test import Client

from postdesk.emails.models import Email
from postdesk.testing import screens
from postdesk.testing.factories import raw_message, receive

pytestmark = pytest.mark.django_db


# Pathological address headers (ReDoS) ------------------------------------------------------------------------------

PATHOLOGICAL = [
    "(" * 50_000 + "a@example.com",
    '"' + '\\"' * 50_000 + '" <a@example.com>',
    "<" * 50_000 + "a@example.com" + ">" * 50_000,
    "a@" + "[" * 50_000,
    ", ".join(f"user{i}@example.com" for i in range(20_000)),
    "=?utf-8?q?" + "=3D" * 30_000 + "?= <a@example.com>",
    "x" * 200_000 + "@example.com",
    "a" + " (c)" * 30_000 + " @example.com",
]


@pytest.fixture(scope="module")
def language_model():
    """Loaded once before timing anything (the worker loads it at start-up)."""
    from postdesk.inbound.language import warm_up

    warm_up()


@pytest.mark.parametrize("value", PATHOLOGICAL, ids=range(len(PATHOLOGICAL)))
def test_pathological_address_headers_are_received_in_linear_time(language_model, forwarding, value):
    raw = raw_message(headers={"Cc": value, "Reply-To": value}).replace(
        b"From: ", b"From: " + value.encode() + b", ", 1
    )
    started = time.monotonic()
    email = receive(forwarding, raw)
    assert time.monotonic() - started < 5
    assert email is not None and len(email.cc) <= 100 and len(email.reply_to) <= 998


# Attachment names ------------------------------------------------------------------------------------------------

HOSTILE_NAMES = [
    "../../../../etc/passwd",
    "..\\..\\windows\\system32\\drivers\\etc\\hosts",
    "invoice\x00.pdf.exe",
    "%2e%2e%2f%2e%2e%2fsecret.txt",
    "%252e%252e%252fdouble.txt",
    "invoice\u202egpj.exe",
    "\u200binvisible\u2066name.txt",
    "con.txt",
    "<img src=x onerror=alert(1)>.html",
    "a" * 5000 + ".pdf",
]


def attachment_part(name: str, boundary: str = "m") -> bytes:
    from email.utils import encode_rfc2231

    return (
        f"--{boundary}\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Disposition: attachment; filename*={encode_rfc2231(name, 'utf-8')}\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode() + base64.encodebytes(b"payload").replace(b"\n", b"\r\n")


def with_attachments(names: list[str]) -> bytes:
    head = raw_message(subject="Files").split(b"Content-Type:", 1)[0]
    body = b"--m\r\nContent-Type: text/plain\r\n\r\nsee the files\r\n"
    body += b"".join(attachment_part(n) for n in names) + b"--m--\r\n"
    return head + b'Content-Type: multipart/mixed; boundary="m"\r\n\r\n' + body


def unsafe(name: str) -> bool:
    return any(c in name for c in "/\\\x00\u202e\u2066\u200b") or name.startswith(".") or not name


def test_hostile_attachment_names_are_stored_and_served_safely_and_the_original_kept(
    forwarding, alice_client, sam
):
    from postdesk.conftest import ApiClient

    email = receive(forwarding, with_attachments(HOSTILE_NAMES))
    attachments = list(email.attachments.order_by("id"))
    assert len(attachments) == len(HOSTILE_NAMES)
    for attachment, name in zip(attachments, HOSTILE_NAMES, strict=True):
        assert not unsafe(attachment.filename), (name, attachment.filename)
        assert len(attachment.filename) <= 255 and attachment.filename != "con.txt"
        assert (
            attachment.original_filename == name.replace("\x00", " ")[:1000]
        )  # kept for the record (no NUL)
    detail = ApiClient(sam).get(f"/api/v1/emails/{email.pk}").json()
    assert all(not unsafe(a["filename"]) for a in detail["attachments"])
    client = Client()
    client.force_login(sam)
    for attachment in attachments:
        response = client.get(f"/emails/{email.pk}/attachments/{attachment.pk}")
        assert response.status_code == 200
        assert response["Content-Type"] == "application/octet-stream"  # never rendered from our origin
        disposition = response["Content-Disposition"]
        assert disposition.startswith("attachment;") and not unsafe(disposition.split("filename", 1)[1][2:-1])
        assert response["X-Content-Type-Options"] == "nosniff"


# Encoded words hiding CR/LF ----------------------------------------------------------------------------------------


def test_an_encoded_word_subject_hiding_cr_lf_cannot_inject_a_header_into_the_reply(
    forwarding, alice, project, sender_account, smtp_sink
):
    from postdesk.conftest import ApiClient
    from postdesk.outbound import sender

    hidden = "Hello\r\nBcc: victim@evil.test\r\nX-Injected: yes"
    encoded = "=?utf-8?B?" + base64.b64encode(hidden.encode()).decode() + "?="
    raw = raw_message().replace(b"Subject: Where is my order?", b"Subject: " + encoded.encode())
    raw = raw.replace(b"From: ", b"From: =?utf-8?Q?Eve=0D=0ABcc=3A_x=40evil.test?= <x", 1).replace(
        b"<x=?", b"=?", 1
    )
    email = receive(forwarding, raw)
    assert "\r" not in email.subject and "\n" not in email.subject
    assert "\r" not in email.from_name and "\n" not in email.from_name
    api = ApiClient(alice)
    ticket = api.post(f"/api/v1/emails/{email.pk}/ticket", {"new": {"title": None}}).json()["number"]
    assert api.post(f"/api/v1/tickets/{ticket}/reply", {"body": "We are on it."}).status_code == 201
    sender.deliver(sender.due_ids())
    sent = smtp_sink.messages[-1]
    head = sent.data.split(b"\r\n\r\n", 1)[0]
    assert sent.rcpt_tos == ["customer@example.com"]
    assert b"\r\nBcc:" not in head and b"\r\nX-Injected:" not in head
    assert head.count(b"\r\nSubject:") == 1


# Tracking user agents ------------------------------------------------------------------------------------------------

HOSTILE_AGENT = '<script>alert("ua")</script><svg onload=alert(1)><img src=x onerror=alert(2)>'


def test_html_in_a_tracking_user_agent_is_stored_as_text_and_never_rendered(mass, project, smtp_sink, sam):
    from postdesk.campaigns import sender, services
    from postdesk.conftest import ApiClient
    from postdesk.outbound import tracking

    campaign = services.create_campaign(
        project=project,
        account=mass,
        template=project.templates.get(name="news"),
        recipients=[{"email": "r@example.com", "fields": {"name": "R"}}],
    )
    sender.run(campaign.pk)
    email = Email.objects.get(campaign=campaign)
    key = sender.tracking_key()
    client = Client()
    assert (
        client.get(
            f"/t/o/{tracking.make_tracking_token(key, tracking.KIND_OPEN, email.pk)}",
            HTTP_USER_AGENT=HOSTILE_AGENT,
        ).status_code
        == 200
    )
    click = client.get(
        f"/t/c/{tracking.make_tracking_token(key, tracking.KIND_CLICK, email.pk, 0)}",
        HTTP_USER_AGENT=HOSTILE_AGENT,
    )
    assert click.status_code == 302
    response = ApiClient(sam).get(f"/api/v1/emails/{email.pk}")
    assert response["Content-Type"].startswith("application/json")
    agents = [
        e["detail"].get("user_agent") for e in response.json()["events"] if e["kind"] in ("opened", "clicked")
    ]
    assert agents == [HOSTILE_AGENT, HOSTILE_AGENT]  # kept as data, JSON-encoded
    staff = Client()
    staff.force_login(sam)
    for url in (f"/emails/{email.pk}/", f"/emails/{email.pk}/body"):
        page = staff.get(url, follow=True)
        assert page.status_code in (200, 404)
        assert (
            '<script>alert("ua")' not in page.content.decode() and "<svg onload" not in page.content.decode()
        )


# Spoofed customer replies --------------------------------------------------------------------------------------------


@pytest.fixture
def ticketed(forwarding, alice, project):
    from postdesk.tickets import services

    first = receive(forwarding, raw_message(sender="carla@example.com", message_id="<start@example.com>"))
    ticket = services.assign_email(first, title="Order", by=alice)
    return first, ticket


SPOOFS = {
    "copied In-Reply-To": {"in_reply_to": "<start@example.com>"},
    "copied References": {"references": "<start@example.com>"},
    "both thread headers": {"in_reply_to": "<start@example.com>", "references": "<start@example.com>"},
    "ticket number in the subject": {"subject": "Re: [{number}] Order"},
    "everything, and the customer's display name": {
        "in_reply_to": "<start@example.com>",
        "references": "<start@example.com>",
        "subject": "Re: [{number}] Order",
        "name": "Carla Customer",
    },
}


@pytest.mark.parametrize("spoof", SPOOFS, ids=list(SPOOFS))
def test_a_stranger_copying_thread_headers_does_not_join_the_ticket(forwarding, ticketed, spoof):
    first, ticket = ticketed
    fields = {k: v.format(number=ticket.number) for k, v in SPOOFS[spoof].items()}
    reply = receive(
        forwarding, raw_message(sender="mallory@evil.test", body="Send the refund to me", **fields)
    )
    assert reply.ticket_id is None and reply.status == "new"
    assert reply.thread_id != first.thread_id
    real = receive(forwarding, raw_message(sender="carla@example.com", in_reply_to="<start@example.com>"))
    assert real.ticket_id == ticket.pk  # the customer's own reply still joins


# Click tracking: no open redirect ------------------------------------------------------------------------------------


def test_click_tracking_redirects_only_to_the_stored_target_and_refuses_every_tampering(
    mass, project, smtp_sink
):
    from postdesk.campaigns import sender, services
    from postdesk.campaigns.models import Campaign
    from postdesk.outbound import tracking

    campaign = services.create_campaign(
        project=project,
        account=mass,
        template=project.templates.get(name="news"),
        recipients=[{"email": "r@example.com", "fields": {"name": "R"}}],
    )
    sender.run(campaign.pk)
    email = Email.objects.get(campaign=campaign)
    key = sender.tracking_key()
    good = tracking.make_tracking_token(key, tracking.KIND_CLICK, email.pk, 0)
    client = Client()
    response = client.get(f"/t/c/{good}", {"url": "https://evil.example.net/", "next": "//evil.example.net"})
    assert response.status_code == 302 and response["Location"] == "https://shop.acme.test/offers"
    bad = {
        "tampered": good[:-1] + ("A" if good[-1] != "A" else "B"),
        "other kind": tracking.make_tracking_token(key, tracking.KIND_OPEN, email.pk, 0),
        "index out of range": tracking.make_tracking_token(key, tracking.KIND_CLICK, email.pk, 7),
        "another key": tracking.make_tracking_token(b"k" * 32, tracking.KIND_CLICK, email.pk, 0),
        "unknown email": tracking.make_tracking_token(key, tracking.KIND_CLICK, email.pk + 1000, 0),
        "a url": "https%3A%2F%2Fevil.example.net",
        "path traversal": "..%2F..%2Flogin",
    }
    for name, token in bad.items():
        assert client.get(f"/t/c/{token}").status_code == 404, name
    for target in (
        "javascript:alert(1)",
        "//evil.example.net",
        "https://evil.example.net/\r\nSet-Cookie: x=1",
        "data:text/html,<script>alert(1)</script>",
    ):
        Campaign.objects.filter(pk=campaign.pk).update(
            links=[target]
        )  # even a bad stored target never goes out
        assert client.get(f"/t/c/{good}").status_code == 404, target


# Remote images pointing at internal addresses: the server never fetches anything ---------------------------------

INTERNAL_IMAGES = """<p>Look:</p>
<img src="http://169.254.169.254/latest/meta-data/iam/security-credentials/">
<img src="http://127.0.0.1:6379/x.png" srcset="http://[::1]:8000/a.png 1x, http://10.0.0.1/b.png 2x">
<img src="//internal.corp.example/c.png"><img src="http://localhost:9200/_cat/indices">
<div style="background:url(http://192.168.1.1/bg.png)">bg</div>
<table background="http://172.16.0.1/t.png"><tr><td>t</td></tr></table>
<link rel="stylesheet" href="http://127.0.0.1:5432/x.css"><video poster="http://169.254.169.254/p.png"></video>
<input type="image" src="http://127.0.0.1:25/i.png"><object data="http://127.0.0.1:11211/o"></object>
<svg><image href="http://169.254.169.254/svg.png"/></svg><iframe src="http://127.0.0.1:8000/admin"></iframe>
"""


@pytest.fixture
def no_outbound_connections(monkeypatch):
    """Any connection or name lookup from this process fails loudly and is recorded (the database aside)."""
    attempts = []
    database = settings.DATABASES["default"]
    allowed = {(database.get("HOST") or "", int(database.get("PORT") or 0))}
    real_connect = socket.socket.connect

    def connect(sock, address):
        if isinstance(address, tuple) and (address[0], address[1]) in allowed:
            return real_connect(sock, address)
        if sock.family == socket.AF_UNIX:
            return real_connect(sock, address)
        attempts.append(address)
        raise OSError(f"proof: outbound connection to {address!r} refused")

    def getaddrinfo(host, *args, **kwargs):
        attempts.append(host)
        raise OSError(f"proof: name lookup of {host!r} refused")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", lambda sock, address: connect(sock, address))
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return attempts


def test_remote_images_at_internal_addresses_are_never_fetched_by_the_server(
    forwarding, alice_client, sam_client, no_outbound_connections
):
    email = receive(forwarding, raw_message(subject="Images", html=INTERNAL_IMAGES, body="see the images"))
    assert email.has_remote_images
    # stored neutralised: remote URLs survive only in data-remote-* attributes, which no browser loads
    html = re.sub(r'data-remote-[a-z]+="[^"]*"', "", email.content.html)
    for address in ("169.254.169.254", "127.0.0.1:6379", "[::1]", "10.0.0.1", "192.168.1.1", "172.16.0.1"):
        assert f"http://{address}" not in html  # neutralised in storage: no attribute a browser would load
    pages = [
        alice_client.get(f"/emails/{email.pk}/"),
        alice_client.get(f"/emails/{email.pk}/body"),
        sam_client.get(f"/api/v1/emails/{email.pk}"),
    ]
    alice_client.post(f"/emails/{email.pk}/images")  # the agent allows remote images: the browser may fetch
    allowed = alice_client.get(f"/emails/{email.pk}/body")  # them, under the document's CSP; the server never
    pages.append(allowed)
    assert [p.status_code for p in pages] == [200, 200, 200, 200]
    assert (
        "sandbox" in allowed["Content-Security-Policy"]
        and "script-src" not in allowed["Content-Security-Policy"]
    )
    assert no_outbound_connections == []


def test_the_api_returns_hostile_mail_as_json_data(forwarding, sam):
    from postdesk.conftest import ApiClient

    email = receive(forwarding, screens.hostile_raw())
    response = ApiClient(sam).get(f"/api/v1/emails/{email.pk}")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    assert response["X-Content-Type-Options"] == "nosniff"
    body = json.loads(response.content)
    assert body["subject"] == screens.HOSTILE_SUBJECT  # the data as sent; escaping is the renderer's job
    assert "<script" not in body["html"].lower() and "onerror" not in body["html"].lower()


# NUL characters in requests --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params", [{"recipient": "a\x00b"}, {"sender": "\x00"}, {"subject": "x\x00"}, {"q": "\x00"}]
)
def test_nul_characters_in_api_parameters_get_422_naming_the_field(sam, project, params):
    """Found by schemathesis: a NUL in a search term reached the database and came back as 503 'storage
    unavailable, try again' (PostgreSQL refuses NUL in text; SQLite's full-text search failed)."""
    from postdesk.conftest import ApiClient

    response = ApiClient(sam).get("/api/v1/emails", **params)
    assert response.status_code == 422 and response.json()["field"] == next(iter(params))


def test_nul_characters_in_json_bodies_and_pages_are_refused_before_the_database(
    alice, alice_client, ticketed
):
    from postdesk.conftest import ApiClient

    _, ticket = ticketed
    response = ApiClient(alice).post(
        f"/api/v1/tickets/{ticket.number}/reply", {"body": "hi", "cc": ["a\x00"]}
    )
    assert response.status_code == 422 and response.json()["field"] == "cc[0]"
    assert alice_client.get("/tickets/", {"q": "\x00"}).status_code == 400
    assert alice_client.post(f"/tickets/{ticket.number}/reply", {"body": "a\x00b"}).status_code == 400
    assert ticket.emails.count() == 1  # nothing queued


def test_raw_mail_posted_over_http_keeps_its_nul_bytes(forwarding, sam):
    from postdesk.conftest import ApiClient

    raw = raw_message(message_id="<nul@example.com>", body="binary\x00junk")
    response = ApiClient(sam).post("/api/v1/inbound/support-in", raw, content_type="message/rfc822")
    assert response.status_code == 202
    from postdesk.inbound.models import IncomingMessage

    assert bytes(IncomingMessage.objects.get().raw.data) == raw


# Moments PostgreSQL cannot hold -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/emails", "/api/v1/tickets"])
def test_moments_with_odd_offsets_are_taken_in_utc_and_impossible_ones_get_422_naming_the_field(sam, project, path):
    """Found by schemathesis: date_to=6137-08-28T14:35:56+21:44 reached PostgreSQL (offsets only up to +-15:59 there)
    and came back as 503 'storage unavailable'."""
    from postdesk.conftest import ApiClient

    client = ApiClient(sam)
    assert client.get(path, date_to="6137-08-28T14:35:56+21:44").status_code == 200
    response = client.get(path, date_from="9999-12-31T23:00:00-10:00")
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "date_from"
