"""Fuzzing the mail pipeline under hypothesis, bounded for CI (the whole file well under a minute): MIME-ish messages
built from random headers, boundaries, nesting, encodings and garbage, and mutations of real corpus messages, fed to
the pure pipeline (inbound.processing.analyse: MIME, reports, threading keys, language) and, on a smaller budget,
through the whole receive path (intake and processing in the database). No exception escapes, nothing hangs (each
example has a time bound), and the results keep their invariants (no CR/LF/NUL in decoded headers, safe file names).
The parser-level properties are in inbound/tests/test_mime.py and test_sanitize.py."""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postdesk.inbound.mime import safe_filename
from postdesk.inbound.processing import analyse

PER_EXAMPLE_SECONDS = 2.0
FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

HEADER_NAMES = [
    "From",
    "To",
    "Cc",
    "Reply-To",
    "Subject",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Date",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Content-Disposition",
    "Content-ID",
    "MIME-Version",
    "Auto-Submitted",
    "X-Failed-Recipients",
    "Return-Path",
    "Precedence",
    "X-Postdesk-Id",
]
CONTENT_TYPES = [
    "text/plain",
    "text/html",
    "multipart/mixed",
    "multipart/alternative",
    "multipart/related",
    "multipart/report; report-type=delivery-status",
    "message/rfc822",
    "message/delivery-status",
    "message/feedback-report",
    "application/octet-stream",
    "image/png",
    "text/rfc822-headers",
]
WORDS = st.sampled_from(
    [
        "=?utf-8?B?w6k=?=",
        "=?iso-8859-2?Q?=F5?=",
        "=?x?q?=0D=0A?=",
        "<a@b>",
        '"q\\"',
        "(c",
        "a@",
        "@b",
        ",",
        ";",
        "boundary=b",
        "charset=bogus",
        "filename*=utf-8''%2e%2e%2f",
        "\u202e",
        "\x00",
        "\r",
        "\n ",
        "<script>",
        "[101-20261126-000001]",
        "Re:",
        "Fwd:",
    ]
)
TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=30)


@st.composite
def header(draw) -> bytes:
    name = draw(st.sampled_from(HEADER_NAMES) | st.text("abcXYZ-", min_size=1, max_size=12))
    if name == "Content-Type":
        value = draw(st.sampled_from(CONTENT_TYPES)) + draw(
            st.sampled_from(["", "; boundary=b", '; boundary="c"', "; charset=utf-8", "; charset=x"])
        )
    else:
        value = " ".join(draw(st.lists(WORDS | TEXT, max_size=6)))
    return f"{name}: {value}".encode("utf-8", "surrogateescape") + b"\r\n"


@st.composite
def part(draw, depth: int = 0) -> bytes:
    head = b"".join(draw(st.lists(header(), max_size=5)))
    if depth < 3 and draw(st.booleans()):
        boundary = draw(st.sampled_from([b"b", b"c", b"b" * 70, b""]))
        children = draw(st.lists(part(depth + 1), max_size=3))
        body = b"".join(b"--" + boundary + b"\r\n" + c + b"\r\n" for c in children)
        body += draw(st.sampled_from([b"--" + boundary + b"--\r\n", b"", b"--" + boundary + b"\r\n"]))
        head += b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n'
    else:
        body = draw(
            st.binary(max_size=200)
            | st.sampled_from(
                [
                    b"QUJD\r\n",
                    b"=E9=\r\n",
                    b"begin 644 x\r\n",
                    b"<p>hi<img src=cid:x@y>",
                    b"Final-Recipient: rfc822;a@b",
                ]
            )
        )
    return head + draw(st.sampled_from([b"\r\n", b"\n", b""])) + body


def bounded(raw: bytes):
    started = time.monotonic()
    result = analyse(raw, detect_language=True, fallback_id="<fuzz@postdesk.invalid>")
    elapsed = time.monotonic() - started
    assert elapsed < PER_EXAMPLE_SECONDS, f"{elapsed:.2f} s for {len(raw)} bytes"
    return result


def check(result) -> None:
    parsed = result.parsed
    for value in (parsed.subject or "", parsed.message_id or "", parsed.in_reply_to or ""):
        assert not any(c in value for c in "\r\n\x00"), repr(value)
    for address in [parsed.from_, *parsed.to, *parsed.cc, *parsed.reply_to]:
        if address is not None:
            assert not any(c in (address.address or "") + (address.name or "") for c in "\r\n\x00")
    for attachment in parsed.attachments:
        assert attachment.filename and safe_filename(attachment.filename) == attachment.filename
    assert result.keys and all(k.startswith("<") for k in result.keys)


@pytest.fixture(scope="module", autouse=True)
def language_model():
    from postdesk.inbound.language import warm_up

    warm_up()


@FUZZ
@given(part())
def test_the_pipeline_never_raises_nor_hangs_on_generated_mime(raw):
    check(bounded(raw))


def corpus_messages() -> list[bytes]:
    from postdesk.testing.corpora import corpora_dir

    root = corpora_dir()
    files = (
        sorted(p for p in root.rglob("*") if p.is_file() and p.stat().st_size < 200_000)
        if root.is_dir()
        else []
    )
    random.Random(11).shuffle(files)
    return [p.read_bytes() for p in files[:300]]


CORPUS = corpus_messages()


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(CORPUS)))
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "cut", "dup", "insert", "crlf"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[at : at + draw(st.integers(1, 500))]
        elif kind == "dup":
            data[at:at] = data[at : at + draw(st.integers(1, 300))] * draw(st.integers(1, 20))
        elif kind == "insert":
            data[at:at] = draw(
                st.sampled_from(
                    [
                        b"\r\n--b\r\n",
                        b"\r\n\r\n",
                        b"Content-Type: multipart/mixed; boundary=b\r\n",
                        b"=?utf-8?B?",
                        b"\x00",
                        b"\r\n.\r\n",
                    ]
                )
            )
        else:
            data = bytearray(bytes(data).replace(b"\r\n", b"\n"))
    return bytes(data)


@pytest.mark.skipif(not CORPUS, reason="the shared corpora are not here (POSTDESK_CORPORA)")
@FUZZ
@given(mutated())
def test_the_pipeline_never_raises_nor_hangs_on_mutated_corpus_mail(raw):
    check(bounded(raw))


@pytest.mark.django_db
@settings(
    max_examples=15,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)
@given(part())
def test_the_whole_receive_path_stores_and_processes_anything(forwarding, raw):
    from postdesk.inbound.models import IncomingMessage
    from postdesk.testing.factories import receive

    started = time.monotonic()
    email = receive(
        forwarding, raw + b"\r\nMessage-ID: <fuzz-" + str(time.monotonic_ns()).encode() + b"@x>\r\n"
    )
    assert time.monotonic() - started < 5
    rows = list(IncomingMessage.objects.order_by("-id").values_list("state", "error")[:1])
    assert email is not None and rows[0][0] == "done", (rows, raw)


@pytest.mark.django_db
def test_raw_8bit_bytes_in_references_and_content_id_do_not_fail_processing(forwarding):
    """Found by this fuzzer: invalid UTF-8 in References or Content-ID reached the database as surrogate escapes
    ("surrogates not allowed") and the message was marked failed instead of becoming an email."""
    from postdesk.inbound.models import IncomingMessage
    from postdesk.testing.factories import receive

    raw = (
        b"From: a@example.com\r\nSubject: 8bit\r\nMessage-ID: <eight@example.com>\r\n"
        b"References: <x\xff\xfe@example.com> \xe9t\xe9\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/related; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n'
        b"--b\r\nContent-Type: image/png\r\nContent-ID: <logo\xff\xa0@x>\r\n\r\nPNG\r\n--b--\r\n"
    )
    email = receive(forwarding, raw)
    assert IncomingMessage.objects.get().state == "done" and email is not None
    email.references.encode("utf-8")
    assert all(a.content_id.encode("utf-8") for a in email.attachments.all())
