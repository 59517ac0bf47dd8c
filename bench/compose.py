"""Outbound building blocks, measured against their baselines in the same run.

    .venv/bin/python bench/compose.py [--rounds 5] [--seconds 0.4] [--json bench/results/compose.json]

Single-threaded (one core). Every figure is measured in interleaved rounds next to its baseline, and the
ratios are taken within each round and then their median reported, so load from other processes on the
machine moves both sides of a ratio together.

* build:  ``compose.build_message`` vs ``email.message.EmailMessage`` (policy.default, CRLF output) for a
          ~2 KB reply (ASCII, non-ASCII, with an HTML alternative). Target >= 5,000/s.
* render: ``PreparedMessage.render`` per recipient (fields precomputed, and with its tracking tokens and
          List-Unsubscribe made each time) vs a fresh EmailMessage per recipient. Target >= 10,000/s.
* sign:   ``DkimSigner.sign`` vs ``dkim.sign`` (dkimpy) on the same messages, relaxed/relaxed with the
          same header list; the raw RSA-2048 signature rate is the ceiling.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dkim as dkimpy  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402

from postdesk.outbound.compose import build_message, prepare_template  # noqa: E402
from postdesk.outbound.dkim import DEFAULT_SIGNED_HEADERS, DkimSigner, generate_dkim_key  # noqa: E402
from postdesk.outbound.tracking import (  # noqa: E402
    KIND_CLICK,
    KIND_OPEN,
    KIND_UNSUBSCRIBE,
    insert_open_pixel,
    list_unsubscribe_headers,
    make_tracking_token,
    rewrite_links,
)

DATE = datetime(2024, 3, 5, 14, 7, 9, tzinfo=UTC)
KEY = bytes(range(32))

PARAGRAPH = (
    "Thank you for contacting us about your order. We have checked with the warehouse and the parcel "
    "left this morning; you should receive a tracking number by email within the next few hours.\n"
)
REPLY_ASCII = "Hello Jane,\n\n" + PARAGRAPH * 9 + "\nKind regards,\nThe support team\n"
REPLY_UTF8 = (
    "Bonjour Zoë,\n\n" + PARAGRAPH.replace("order", "commande élevée") * 8 + "\nCordialement,\nL'équipe\n"
)
REPLY_HTML = (
    "<html><body>" + "".join(f"<p>{p}</p>\n" for p in REPLY_ASCII.split("\n") if p) + "</body></html>"
)

REPLY = dict(
    from_address="support@example.com",
    from_name="Example Support",
    to=[("Jane Doe", "jane.doe@example.org")],
    subject="Re: Your order #123456 has shipped",
    message_id="<1a2b3c.4d5e6f@example.com>",
    date=DATE,
    in_reply_to="<CAF=abc123@mail.example.org>",
    references=["<root@mail.example.org>", "<CAF=abc123@mail.example.org>"],
    headers={"X-Postdesk-Id": "123456", "Auto-Submitted": "auto-replied"},
)


def build_ours(text: str, html: str | None, subject: str = REPLY["subject"]) -> bytes:
    return build_message(**{**REPLY, "subject": subject}, text=text, html=html)


def build_stdlib(text: str, html: str | None, subject: str = REPLY["subject"]) -> bytes:
    msg = EmailMessage(policy=policy.default)
    msg["From"] = Address(REPLY["from_name"], addr_spec=REPLY["from_address"])
    msg["To"] = Address("Jane Doe", addr_spec="jane.doe@example.org")
    msg["Subject"] = subject
    msg["Date"] = DATE
    msg["Message-ID"] = REPLY["message_id"]
    msg["In-Reply-To"] = REPLY["in_reply_to"]
    msg["References"] = " ".join(REPLY["references"])
    for name, value in REPLY["headers"].items():
        msg[name] = value
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg.as_bytes(policy=policy.SMTP)


# ------------------------------------------------------------------------------------------------ mass mail

MASS_TEXT = (
    "Hello {{ first_name }},\n\n"
    + "Our autumn collection is here: new coats, boots and scarves, with free delivery this week.\n" * 12
    + "\nSee you soon,\nExample Shop\n\nUnsubscribe: {{ unsubscribe_url }}\n"
)
MASS_HTML = (
    "<html><body><p>Hello {{ first_name }},</p>\n"
    + "<p>Our autumn collection is here: new coats, boots and scarves, with free delivery this week.</p>\n"
    * 12
    + '<p><a href="https://shop.example.com/autumn?utm_source=mail&amp;utm_campaign=autumn">Shop now</a> '
    '<a href="https://shop.example.com/boots">Boots</a> <a href="https://shop.example.com/coats">Coats</a></p>\n'
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>'
)
BASE = "https://postdesk.example.com"


def prepared_campaign():
    html, targets = rewrite_links(MASS_HTML, lambda i, _t: f"{BASE}/t/c/{{{{ _link_{i} }}}}")
    html = insert_open_pixel(html, f"{BASE}/t/o/{{{{ _open }}}}")
    pm = prepare_template(
        from_address="news@example.com",
        from_name="Example Shop",
        subject_template="{{ first_name }}, our autumn collection is here",
        text_template=MASS_TEXT,
        html_template=html,
        headers={"Precedence": "bulk", "X-Campaign": "autumn-2024"},
    )
    return pm, len(targets)


def recipient_fields(email_id: int, n_links: int) -> tuple[dict, dict]:
    unsub = f"{BASE}/u/{make_tracking_token(KEY, KIND_UNSUBSCRIBE, email_id)}"
    fields = {
        "first_name": "Zoë",
        "unsubscribe_url": unsub,
        "_open": make_tracking_token(KEY, KIND_OPEN, email_id),
    }
    for i in range(n_links):
        fields[f"_link_{i}"] = make_tracking_token(KEY, KIND_CLICK, email_id, i)
    return fields, list_unsubscribe_headers(unsub, "unsubscribe@example.com")


def render_stdlib(fields: dict, headers: dict, recipient: str, message_id: str) -> bytes:
    """The per-recipient EmailMessage path the issue measured at ~500/s."""
    html, _ = rewrite_links(MASS_HTML, lambda i, _t: f"{BASE}/t/c/{{{{ _link_{i} }}}}")
    html = insert_open_pixel(html, f"{BASE}/t/o/{{{{ _open }}}}")
    for name, value in fields.items():
        html = html.replace("{{ " + name + " }}", value)
    text = MASS_TEXT
    for name, value in fields.items():
        text = text.replace("{{ " + name + " }}", value)
    msg = EmailMessage(policy=policy.default)
    msg["From"] = Address("Example Shop", addr_spec="news@example.com")
    msg["To"] = recipient
    msg["Subject"] = f"{fields['first_name']}, our autumn collection is here"
    msg["Date"] = DATE
    msg["Message-ID"] = message_id
    msg["Precedence"] = "bulk"
    msg["X-Campaign"] = "autumn-2024"
    for name, value in headers.items():
        msg[name] = value
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg.as_bytes(policy=policy.SMTP)


# ---------------------------------------------------------------------------------------------- measuring


def rate(fn, seconds: float) -> float:
    """Calls per second of fn(), measured for about ``seconds``."""
    fn()  # warm
    n = 1
    calls = 0
    start = time.perf_counter()
    while True:
        for _ in range(n):
            fn()
        calls += n
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return calls / elapsed
        n = min(n * 2, 4096)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.4, help="per measurement")
    parser.add_argument(
        "--json", type=Path, help="also write the figures here (bench/results/ is ignored by git)"
    )
    args = parser.parse_args()

    pem, record = generate_dkim_key()
    signer = DkimSigner(pem, "example.com", "bench")
    private_key = serialization.load_pem_private_key(pem, password=None)
    h_list = [h.encode() for h in DEFAULT_SIGNED_HEADERS]

    pm, n_links = prepared_campaign()
    fields, unsub_headers = recipient_fields(123456, n_links)
    counter = iter(range(10**9))

    def render_with_tokens():
        i = next(counter)
        f, h = recipient_fields(i, n_links)
        return pm.render(("Zoë Ågren", "zoe@example.org"), f, f"<{i}.campaign@example.com>", h)

    reply_ascii = build_ours(REPLY_ASCII, None)
    reply_html = build_ours(REPLY_ASCII, REPLY_HTML)
    mass = pm.render(("Zoë Ågren", "zoe@example.org"), fields, "<1.campaign@example.com>", unsub_headers)

    # Sanity: both signers' output verifies with dkimpy, so the comparison is like for like.
    def dns(name, timeout=5):
        return record.encode()

    for message in (reply_ascii, reply_html, mass):
        assert dkimpy.verify(signer.sign(message), dnsfunc=dns)
        ours = dkimpy.sign(
            message,
            b"bench",
            b"example.com",
            pem,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=h_list,
        )
        assert dkimpy.verify(ours + message, dnsfunc=dns)

    # (group, name, fn); the first entry of each group is its baseline.
    benches = [
        ("build ascii 2KB", "EmailMessage", lambda: build_stdlib(REPLY_ASCII, None)),
        ("build ascii 2KB", "build_message", lambda: build_ours(REPLY_ASCII, None)),
        ("build utf-8 2KB", "EmailMessage", lambda: build_stdlib(REPLY_UTF8, None, "Re: Votre commande élevée")),
        ("build utf-8 2KB", "build_message", lambda: build_ours(REPLY_UTF8, None, "Re: Votre commande élevée")),
        ("build text+html", "EmailMessage", lambda: build_stdlib(REPLY_ASCII, REPLY_HTML)),
        ("build text+html", "build_message", lambda: build_ours(REPLY_ASCII, REPLY_HTML)),
        ("mass render", "EmailMessage per recipient", lambda: render_stdlib(fields, unsub_headers, "zoe@example.org", "<1@x.y>")),
        ("mass render", "render (fields given)", lambda: pm.render(("Zoë Ågren", "zoe@example.org"), fields, "<1@x.y>", unsub_headers)),
        ("mass render", "render + tokens + headers", render_with_tokens),
        ("dkim sign reply", "dkimpy", lambda: dkimpy.sign(reply_ascii, b"bench", b"example.com", pem, canonicalize=(b"relaxed", b"relaxed"), include_headers=h_list)),
        ("dkim sign reply", "DkimSigner", lambda: signer.sign(reply_ascii)),
        ("dkim sign reply", "raw RSA-2048 (ceiling)", lambda: private_key.sign(b"x" * 32, padding.PKCS1v15(), hashes.SHA256())),
        ("dkim sign mass", "dkimpy", lambda: dkimpy.sign(mass, b"bench", b"example.com", pem, canonicalize=(b"relaxed", b"relaxed"), include_headers=h_list)),
        ("dkim sign mass", "DkimSigner", lambda: signer.sign(mass)),
    ]  # fmt: skip
    rates: dict[tuple[str, str], list[float]] = {(g, n): [] for g, n, _ in benches}
    ratios: dict[tuple[str, str], list[float]] = {(g, n): [] for g, n, _ in benches}
    for r in range(args.rounds):
        baseline: dict[str, float] = {}
        for group, name, fn in benches:
            # dkimpy is ~100x slower: a shorter window keeps the run short without changing its rate.
            value = rate(fn, args.seconds / 2 if name == "dkimpy" else args.seconds)
            rates[(group, name)].append(value)
            baseline.setdefault(group, value)
            ratios[(group, name)].append(value / baseline[group])
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)

    print(
        f"\nPython {platform.python_version()} on {platform.machine()}, {args.rounds} rounds of {args.seconds}s, one core"
    )
    print(f"sizes: reply {len(reply_ascii)} B, reply+html {len(reply_html)} B, mass {len(mass)} B\n")
    print(
        f"{'group':<17} {'implementation':<28} {'median/s':>10} {'min/s':>10} {'max/s':>10} {'x baseline':>11}"
    )
    results = []
    last_group = None
    for group, name, _ in benches:
        values = rates[(group, name)]
        ratio = statistics.median(ratios[(group, name)])
        if last_group is not None and group != last_group:
            print()
        last_group = group
        print(
            f"{group:<17} {name:<28} {statistics.median(values):>10,.0f} {min(values):>10,.0f} {max(values):>10,.0f} {ratio:>10.1f}x"
        )
        results.append(
            dict(
                group=group,
                name=name,
                median=statistics.median(values),
                min=min(values),
                max=max(values),
                ratio=ratio,
            )
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({"rounds": args.rounds, "seconds": args.seconds, "results": results}, indent=2)
        )


if __name__ == "__main__":
    main()
