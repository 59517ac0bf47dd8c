"""Inbound MIME parsing: the real-world corpora, header decoding, charsets, structure defects, attachments, and
hostile inputs that must be survived quickly and in bounded memory."""

from __future__ import annotations

import base64
import email
import email.policy
import email.utils
import json
import time
import tracemalloc
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postdesk.inbound.mime import (
    Address,
    Limits,
    decode_bytes,
    decode_header_value,
    first_line,
    parse_addresses,
    parse_message,
    safe_filename,
)
from postdesk.inbound.sanitize import resolve_cids
from postdesk.testing.corpora import corpus

CONTROL = {chr(c) for c in range(0x20)} | {"\x7f"}
HEAD = (
    b"From: Customer <customer@example.org>\r\nTo: support@example.com\r\nSubject: test\r\n"
    b"Date: Tue, 05 Mar 2024 10:15:00 +0100\r\nMessage-ID: <m1@example.org>\r\nMIME-Version: 1.0\r\n"
)


def message(body: bytes, content_type: bytes = b"text/plain; charset=utf-8", head: bytes = HEAD) -> bytes:
    return head + b"Content-Type: " + content_type + b"\r\n\r\n" + body


def multipart(
    *parts: bytes, subtype: bytes = b"mixed", boundary: bytes = b"BOUNDARY", head: bytes = HEAD
) -> bytes:
    body = (
        b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts) + b"--" + boundary + b"--\r\n"
    )
    return message(body, b"multipart/" + subtype + b'; boundary="' + boundary + b'"', head)


def timed(raw: bytes, limit: float = 2.0):
    start = time.perf_counter()
    parsed = parse_message(raw)
    elapsed = time.perf_counter() - start
    assert elapsed < limit, f"took {elapsed:.2f}s"
    return parsed


def no_controls(text: str) -> bool:
    return not (set(text) & CONTROL)


# ---------------------------------------------------------------------------------------------------------------
# Corpora


def corpus_messages() -> list:
    files = []
    for name, pattern in (
        ("mime-cpython", "msg_*.txt"),
        ("mime-nodemailer", "*.eml"),
        ("mime-postal", "*.eml"),
        ("bounces", "maildir/*.eml"),
    ):
        files += sorted(corpus(name).glob(pattern))
    return files


def shape(msg) -> list:
    out = [(msg.get_content_type(), sorted(type(d).__name__ for d in msg.defects), msg.items())]
    payload = msg.get_payload()
    if isinstance(payload, list):
        for child in payload:
            out += shape(child)
    else:
        out.append(payload.rstrip("\r\n") if isinstance(payload, str) else payload)
    return out


@pytest.mark.corpus
def test_it_parses_every_corpus_message_with_its_subject_and_sender():
    files = corpus_messages()
    assert len(files) >= 360
    for path in files:
        raw = path.read_bytes()
        parsed = timed(raw)
        reference = email.message_from_bytes(raw, policy=email.policy.compat32)
        if parsed.parse_error:  # kept raw and flagged: only a message with no header at all
            assert not reference.keys(), path.name
            continue
        assert parsed.message is not None
        subject = str(reference.get("Subject") or "")
        if subject.strip():
            assert parsed.subject.strip(), path.name
            if subject.isascii() and "=?" not in subject:
                assert parsed.subject.split() == subject.split(), path.name
        sender = email.utils.parseaddr(str(reference.get("From") or ""))[1]
        if "@" in sender:
            assert parsed.from_ is not None and parsed.from_.address.lower() == sender.lower(), path.name
        assert no_controls(parsed.subject)
        assert all(no_controls(v) for v in parsed.headers.values())


@pytest.mark.corpus
def test_it_builds_the_same_tree_as_the_stdlib_compat32_parser():
    for path in corpus_messages():
        raw = path.read_bytes()
        reference = email.message_from_bytes(raw, policy=email.policy.compat32)
        ours = parse_message(raw).message
        assert shape(ours) == shape(reference), path.name
        assert (ours.preamble, ours.epilogue) == (reference.preamble, reference.epilogue), path.name


@pytest.mark.corpus
def test_it_reports_the_defects_that_cpython_expects():
    folder = corpus("mime-cpython")
    expected = json.loads((folder / "expected_defects.json").read_text())
    for name, defects in expected.items():
        if name.startswith("_"):
            continue
        parsed = parse_message((folder / name).read_bytes())
        found = {type(d).__name__ for part in parsed.message.walk() for d in part.defects}
        assert set(defects) <= found, name
        assert parsed.defects, name
        assert parsed.parse_error is None
    # where they are: the inner message of msg_42, the inner multipart of msg_15, the root of msg_25
    inner = parse_message((folder / "msg_42.txt").read_bytes()).message.get_payload(1).get_payload(0)
    assert [type(d).__name__ for d in inner.defects] == ["StartBoundaryNotFoundDefect"]
    inner = parse_message((folder / "msg_15.txt").read_bytes()).message.get_payload(0)
    assert [type(d).__name__ for d in inner.defects] == ["StartBoundaryNotFoundDefect"]
    root = parse_message((folder / "msg_25.txt").read_bytes()).message
    assert {type(d).__name__ for d in root.defects} == {
        "NoBoundaryInMultipartDefect",
        "MultipartInvariantViolationDefect",
    }


@pytest.mark.corpus
def test_it_shows_the_text_of_a_multipart_without_boundary_instead_of_losing_it():
    parsed = parse_message((corpus("mime-cpython") / "msg_41.txt").read_bytes())
    assert "Blah blah blah" in parsed.text
    assert any("without boundary" in d for d in parsed.defects)


@pytest.mark.corpus
def test_it_parses_the_large_corpus_messages_quickly():
    for name in ("large_text.eml", "outofmemory.eml", "htmllargecallstack.eml"):
        raw = (corpus("mime-nodemailer") / name).read_bytes()
        parsed = timed(raw, 2.0)
        assert parsed.parse_error is None
        assert parsed.subject


@pytest.mark.corpus
def test_it_resolves_the_inline_images_of_the_nodemailer_sample():
    parsed = parse_message((corpus("mime-nodemailer") / "nodemailer.eml").read_bytes())
    assert parsed.subject.startswith("Nodemailer is unicode friendly ✔")
    inline = [a for a in parsed.attachments if a.inline]
    assert inline and all(a.content_id for a in inline)
    assert {a.filename for a in parsed.attachments} >= {"nyan cat ✔.gif", "notes.txt"}
    urls = {a.content_id: f"/attachments/{i}" for i, a in enumerate(parsed.attachments) if a.content_id}
    html = resolve_cids(parsed.html, urls.get)
    assert "cid:" not in html and "/attachments/" in html


# ---------------------------------------------------------------------------------------------------------------
# Header values: RFC 2047


def test_it_decodes_encoded_word_subjects():
    assert decode_header_value("=?utf-8?q?caf=C3=A9_cr=C3=A8me?=") == "café crème"
    assert decode_header_value("=?UTF-8?B?0J/RgNC40LLQtdGC?=") == "Привет"
    assert decode_header_value("Re: =?iso-8859-1?Q?R=E9ponse?= urgent") == "Re: Réponse urgent"
    assert decode_header_value("=?iso-2022-jp?B?GyRCJUYlOSVIGyhC?=") == "テスト"


def test_it_drops_whitespace_between_encoded_words_and_joins_split_characters():
    # "é" (C3 A9) split across two B words, and a folded line between two Q words
    assert decode_header_value("=?utf-8?B?Y2Fmww==?= =?utf-8?B?qQ==?=") == "café"
    assert decode_header_value("=?utf-8?q?a?=\r\n =?utf-8?q?b?=") == "ab"
    assert decode_header_value("=?utf-8?q?a?= plain =?utf-8?q?b?=") == "a plain b"


def test_it_survives_broken_encoded_words():
    assert decode_header_value("=?utf-8?B?Y2Fm?=") == "caf"  # no padding needed
    assert decode_header_value("=?utf-8?B?Y2Fmw6k?=") == "café"  # missing padding
    assert decode_header_value("=?x-unknown?q?caf=C3=A9?=") == "café"  # unknown charset: UTF-8
    assert decode_header_value("=?utf-8?q?unterminated") == "=?utf-8?q?unterminated"
    assert decode_header_value("=?unicode-escape?q?=5Cx41?=") == "\\x41"  # never a Python-only codec


def test_it_never_returns_cr_lf_or_nul_in_decoded_headers():
    hidden = "=?utf-8?q?Hello=0D=0ABcc:_victim@example.com=00?= =?utf-8?B?DQoNCg==?="
    value = decode_header_value(hidden)
    assert no_controls(value) and "Bcc:" in value
    raw = message(b"body", head=b"From: a@example.org\r\nSubject: " + hidden.encode() + b"\r\n")
    parsed = parse_message(raw)
    assert no_controls(parsed.subject)
    assert parsed.subject.startswith("Hello")


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.binary(max_size=60),
    st.sampled_from(["utf-8", "iso-8859-1", "koi8-r", "shift_jis", "bogus"]),
    st.text(),
)
def test_it_never_returns_control_characters_for_any_encoded_word(data, charset, text):
    words = [
        f"=?{charset}?B?{base64.b64encode(data).decode()}?=",
        f"=?{charset}?Q?{''.join(f'={b:02X}' for b in data)}?=",
        text,
        text.encode("utf-8", "surrogatepass").decode("ascii", "surrogateescape"),
    ]
    for value in (*words, " ".join(words)):
        decoded = decode_header_value(value)
        assert no_controls(decoded)
        assert "\u2028" not in decoded and "\u2029" not in decoded


def test_it_decodes_raw_8bit_headers_as_utf8_else_with_the_body_charset():
    utf8 = message(b"x", head="From: a@example.org\r\nSubject: Grüße\r\n".encode())
    assert parse_message(utf8).subject == "Grüße"
    koi8 = message(
        "Привет".encode("koi8-r"),
        b"text/plain; charset=koi8-r",
        head=b"From: a@example.org\r\nSubject: " + "Привет".encode("koi8-r") + b"\r\n",
    )
    parsed = parse_message(koi8)
    assert parsed.subject == "Привет" and parsed.text == "Привет"


# ---------------------------------------------------------------------------------------------------------------
# Addresses


def test_it_parses_the_usual_address_forms():
    found = parse_addresses(
        '"Doe, Jane" <Jane.Doe@Example.ORG>, bob@EXAMPLE.com (Bob Smith), =?utf-8?q?Ren=C3=A9?= <rene@x.fr>;'
        " Team: a@x.io, b@x.io;, <bare@x.io>"
    )
    assert found == [
        Address("Doe, Jane", "Jane.Doe@example.org"),
        Address("Bob Smith", "bob@example.com"),
        Address("René", "rene@x.fr"),
        Address("", "a@x.io"),
        Address("", "b@x.io"),
        Address("", "bare@x.io"),
    ]


def test_it_keeps_the_null_sender_and_name_only_senders_of_bounces():
    assert parse_message(message(b"x", head=b"From: <>\r\n")).from_ == Address("", "")
    daemon = parse_message(message(b"x", head=b"From: MAILER-DAEMON (Mail Delivery System)\r\n")).from_
    assert daemon == Address("Mail Delivery System", "MAILER-DAEMON")


def test_it_parses_a_whole_encoded_from_header():
    encoded = "=?utf-8?B?" + base64.b64encode(b'"Jane" <jane@example.org>').decode() + "?="
    assert parse_addresses(encoded) == [Address("Jane", "jane@example.org")]


@pytest.mark.parametrize(
    "value",
    [
        "<" * 60_000,
        '"' + "a" * 60_000,
        "(" * 60_000,
        "(a" * 30_000 + ")" * 30_000,
        "\\" * 60_000,
        "a@" * 30_000,
        "a " * 30_000 + "<x@y>",
        ",;:" * 20_000,
        "=?utf-8?q?" * 6_000,
        '"\\(<a@' * 10_000,
        "x@y.z, " * 9_000,
        " " * 60_000 + "<",
        "a " * 30_000 + "<x",
        " " * 30_000 + "a@b <",
        "a\t" * 30_000 + "@",
    ],
)
def test_it_parses_pathological_address_headers_in_linear_time(value):
    start = time.perf_counter()
    parse_addresses(value)
    raw = message(b"x", head=b"From: " + value.encode() + b"\r\nTo: " + value.encode() + b"\r\n")
    parsed = parse_message(raw)
    assert time.perf_counter() - start < 2.0
    assert all(no_controls(a.name + a.address) for a in parsed.to)


# ---------------------------------------------------------------------------------------------------------------
# Bodies and charsets


def test_it_decodes_text_with_the_declared_charset():
    parsed = parse_message(message("Здравствуйте".encode("koi8-r"), b"text/plain; charset=KOI8-R"))
    assert parsed.text == "Здравствуйте" and not parsed.defects


def test_it_falls_back_when_the_declared_charset_is_wrong():
    # declared Latin-1 but UTF-8: UTF-8 wins (valid UTF-8 is almost never real Latin-1)
    parsed = parse_message(message("naïve café".encode(), b"text/plain; charset=iso-8859-1"))
    assert parsed.text == "naïve café"
    # declared UTF-8 but windows-1252
    parsed = parse_message(message("naïve café – ok".encode("cp1252"), b"text/plain; charset=utf-8"))
    assert "caf" in parsed.text and "\ufffd" not in parsed.text[:3]
    assert any("charset" in d for d in parsed.defects)
    # declared Shift_JIS for a superset character: decoded through cp932
    parsed = parse_message(message("①番".encode("cp932"), b"text/plain; charset=shift_jis"))
    assert parsed.text == "①番"


def test_it_falls_back_when_the_charset_is_missing_or_unknown():
    assert parse_message(message("Grüße".encode(), b"text/plain")).text == "Grüße"
    unknown = parse_message(message("Grüße".encode("cp1252"), b"text/plain; charset=x-nonsense"))
    assert unknown.text == "Grüße"
    assert any("unknown charset" in d for d in unknown.defects)
    text, _ = decode_bytes("Ceci est un texte français assez long pour être reconnu.".encode("cp1252"), None)
    assert "français" in text


def test_it_reads_the_charset_of_an_html_part_from_its_meta_tag():
    html = '<html><head><meta charset="windows-1251"></head><body><p>Привет</p></body></html>'
    parsed = parse_message(message(html.encode("cp1251"), b"text/html"))
    assert "Привет" in parsed.html and "Привет" in parsed.text


def test_it_decodes_quoted_printable_and_flowed_text():
    body = b"Soft =\r\nbreak and caf=C3=A9.\r\n"
    raw = (
        HEAD
        + b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        + body
    )
    assert parse_message(raw).text.strip() == "Soft break and café."
    flowed = (
        HEAD
        + b"Content-Type: text/plain; charset=utf-8; format=flowed\r\n\r\nOne long \r\nline.\r\n> quoted\r\n"
    )
    assert parse_message(flowed).text.splitlines()[:2] == ["One long line.", "> quoted"]


def test_it_survives_broken_base64():
    good = base64.b64encode(b"hello world, this is an attachment").decode()
    broken = good[:10] + "!!*\r\n" + good[10:].rstrip("=")  # junk characters and missing padding
    raw = multipart(
        b"Content-Type: text/plain\r\n\r\nsee attached",
        b"Content-Type: application/octet-stream; name=a.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + broken.encode(),
        b"Content-Type: application/octet-stream; name=b.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + b"aGVsbG8=\r\nd29ybGQ=",  # padding in the middle (concatenated chunks)
    )
    parsed = parse_message(raw)
    data = {a.filename: a.data for a in parsed.attachments}
    assert data["a.bin"] == b"hello world, this is an attachment"
    assert data["b.bin"] == b"helloworld"
    assert any("base64" in d for d in parsed.defects)


def test_it_prefers_the_text_part_and_sanitises_the_html_part():
    raw = multipart(
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nPlain version",
        b"Content-Type: text/html; charset=utf-8\r\n\r\n<p onclick=x()>HTML <b>version</b><script>evil()</script>"
        b'<img src="http://tracker.example/p.gif"></p>',
        subtype=b"alternative",
    )
    parsed = parse_message(raw)
    assert parsed.text == "Plain version"
    assert "<b>version</b>" in parsed.html
    assert "script" not in parsed.html and "onclick" not in parsed.html and "evil" not in parsed.html
    assert parsed.has_remote_images and 'data-remote-src="http://tracker.example/p.gif"' in parsed.html


def test_it_derives_the_text_from_html_when_there_is_no_text_part():
    parsed = parse_message(message(b"<html><body><p>Hello <b>there</b></p><ul><li>one</li></ul></body></html>",
                                   b"text/html; charset=utf-8"))  # fmt: skip
    assert "Hello there" in parsed.text and "one" in parsed.text
    assert "<" not in parsed.text


def test_it_joins_inline_text_parts_and_keeps_text_files_as_attachments():
    raw = multipart(
        b"Content-Type: text/plain\r\n\r\nFirst part",
        b"Content-Type: text/plain; name=log.txt\r\nContent-Disposition: attachment; filename=log.txt\r\n\r\nlog",
        b"Content-Type: text/plain\r\n\r\nList footer",
    )
    parsed = parse_message(raw)
    assert parsed.text == "First part\n\nList footer"
    assert [(a.filename, a.data) for a in parsed.attachments] == [("log.txt", b"log")]


def test_it_caps_the_text():
    raw = message(b"word " * 300_000)
    parsed = parse_message(raw, Limits(max_text_chars=1000))
    assert len(parsed.text) == 1000
    assert any("text body longer" in d for d in parsed.defects)


# ---------------------------------------------------------------------------------------------------------------
# Structure


def test_it_keeps_the_parts_when_the_close_boundary_is_missing():
    raw = message(b"--B\r\n\r\none\r\n--B\r\n\r\ntwo\r\n", b'multipart/mixed; boundary="B"')
    parsed = parse_message(raw)
    assert parsed.text == "one\n\ntwo"
    assert any("close boundary" in d for d in parsed.defects)
    assert any(type(d).__name__ == "CloseBoundaryNotFoundDefect" for d in parsed.message.defects)


def test_it_shows_the_body_when_the_boundary_does_not_match():
    raw = message(b"--Other\r\n\r\nthe body\r\n--Other--\r\n", b'multipart/mixed; boundary="B"')
    parsed = parse_message(raw)
    assert "the body" in parsed.text
    assert any("start boundary" in d for d in parsed.defects)


def test_it_reads_a_message_without_a_blank_line_after_the_headers():
    parsed = parse_message(b"From: a@example.org\r\nSubject: s\r\nthis is the body\r\n")
    assert parsed.subject == "s" and parsed.text == "this is the body"


def test_it_exposes_delivery_status_blocks_like_the_stdlib():
    status = (
        b"Reporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; x@example.com\r\nStatus: 5.1.1\r\n"
    )
    raw = multipart(
        b"Content-Type: text/plain\r\n\r\nDelivery failed",
        b"Content-Type: message/delivery-status\r\n\r\n" + status,
        b"Content-Type: message/rfc822\r\n\r\nSubject: original\r\n\r\nhi",
        subtype=b"report; report-type=delivery-status",
    )
    parsed = parse_message(raw)
    tree = parsed.message
    blocks = tree.get_payload(1).get_payload()
    assert blocks[1]["Status"] == "5.1.1"
    assert tree.get_payload(2).get_payload(0)["Subject"] == "original"
    assert parsed.text == "Delivery failed"
    assert [a.content_type for a in parsed.attachments] == ["message/delivery-status", "message/rfc822"]
    assert parsed.attachments[1].data.startswith(b"Subject: original")


def test_it_parses_a_base64_encoded_attached_message():
    inner = base64.b64encode(b"Subject: inner\r\nFrom: x@example.org\r\n\r\nhello").decode().encode()
    raw = multipart(b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n" + inner)
    parsed = parse_message(raw)
    assert parsed.message.get_payload(0).get_payload(0)["Subject"] == "inner"
    assert parsed.attachments[0].data.startswith(b"Subject: inner")


def test_it_flags_what_is_not_a_message_and_never_raises():
    assert parse_message(b"").parse_error
    assert parse_message(b"\x89PNG\r\n\x1a\n\x00\x00binary").parse_error
    assert parse_message(None).parse_error  # type: ignore[arg-type]


def test_it_fills_the_envelope_fields():
    head = (
        HEAD + b"Cc: =?utf-8?q?J=C3=BCrgen?= <j@EXAMPLE.de>\r\nReply-To: replies@example.org\r\n"
        b"Sender: bot@example.org\r\nIn-Reply-To: <prev@example.org>\r\nReferences: <a@x>\r\n <prev@example.org>\r\n"
        b"Auto-Submitted: auto-replied\r\nPrecedence: bulk\r\nList-Id: <list.example.org>\r\n"
        b"Received: from a by b; Tue, 5 Mar 2024 10:00:00 +0000\r\nReceived: from c by d\r\n"
    )
    parsed = parse_message(message(b"x", head=head))
    assert parsed.from_ == Address("Customer", "customer@example.org")
    assert parsed.to == [Address("", "support@example.com")]
    assert parsed.cc == [Address("Jürgen", "j@example.de")]
    assert parsed.reply_to == [Address("", "replies@example.org")]
    assert parsed.sender == Address("", "bot@example.org")
    assert parsed.date == datetime(2024, 3, 5, 9, 15, tzinfo=UTC)
    assert parsed.message_id == "<m1@example.org>"
    assert parsed.in_reply_to == "<prev@example.org>"
    assert parsed.references == "<a@x> <prev@example.org>"
    assert parsed.headers["auto-submitted"] == "auto-replied"
    assert parsed.headers["precedence"] == "bulk"
    assert parsed.headers["list-id"] == "<list.example.org>"
    assert parsed.headers["received"].startswith("from a by b")
    assert parsed.headers["content-type"] == "text/plain; charset=utf-8"


def test_it_tolerates_bad_dates_and_message_ids():
    head = b"From: a@example.org\r\nDate: Feb 30 2024 nonsense\r\nMessage-ID: bare-id@example.org\r\n"
    parsed = parse_message(message(b"x", head=head))
    assert parsed.date is None
    assert parsed.message_id == "<bare-id@example.org>"


# ---------------------------------------------------------------------------------------------------------------
# Attachments and file names


def test_it_decodes_rfc2231_and_rfc2047_file_names():
    raw = multipart(
        b"Content-Type: text/plain\r\n\r\nsee attached",
        b"Content-Type: application/pdf\r\nContent-Disposition: attachment; filename*=utf-8''%E2%82%AC%20rates.pdf"
        b"\r\n\r\npdf",
        b"Content-Type: application/pdf\r\nContent-Disposition: attachment;\r\n filename*0*=utf-8''Gr%C3%BC;"
        b" filename*1*=%C3%9Fe; filename*2=.txt\r\n\r\ntxt",
        b'Content-Type: image/png; name="=?utf-8?B?w6l0w6kucG5n?="\r\n\r\npng',
        b'Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="\xc3\xbcml.doc"\r\n\r\ndoc',
    )
    names = [(a.filename, a.original_filename) for a in parse_message(raw).attachments]
    assert names == [
        ("€ rates.pdf", "€ rates.pdf"),
        ("Grüße.txt", "Grüße.txt"),
        ("été.png", "été.png"),
        ("üml.doc", "üml.doc"),
    ]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system32\\evil.dll", "evil.dll"),
        ("C:\\Users\\bob\\Documents\\report.pdf", "report.pdf"),
        ("%2e%2e%2f%2e%2e%2fetc%2fpasswd", "passwd"),
        ("%252e%252e%252fsecret.txt", "secret.txt"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),
        ("a\x00b.txt", "a b.txt"),
        ("<script>alert(1)</script>.html", "script_.html"),  # '/' is a path separator: the last part stays
        ("   ...   ", "attachment"),
        ("", "attachment"),
        ("CON.txt", "_CON.txt"),
        ("file.txt.", "file.txt"),
        (".htaccess", "htaccess"),
        ("a" * 400 + ".pdf", "a" * 176 + ".pdf"),
        ("fullwidth\uff0fslash.txt", "slash.txt"),
        ("zero\u200bwidth.txt", "zerowidth.txt"),
    ],
)
def test_it_makes_safe_file_names(name, expected):
    assert safe_filename(name) == expected


def test_it_guesses_an_extension_for_nameless_attachments():
    assert safe_filename("", "image/png") == "attachment.png"
    assert safe_filename(None, "message/rfc822") == "attachment.eml"
    assert safe_filename("", "application/x-unknown") == "attachment.bin"


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(max_size=300))
def test_it_never_makes_an_unsafe_file_name(name):
    safe = safe_filename(name)
    assert safe and safe.strip() == safe
    assert not set(safe) & (CONTROL | set('/\\:<>"|?*\u202e\u202d\u2066\u2067\u2068\u2069'))
    assert not safe.startswith(".") and not safe.endswith(".")
    assert len(safe) <= 180 and len(safe.encode()) <= 240


def test_it_stores_hostile_attachment_names_safely_and_keeps_the_original():
    hostile = [
        b'filename="../../etc/passwd"',
        b"filename*=utf-8''evil%00.txt",
        b'filename="%2e%2e%2fsecret"',
        'filename="report\u202egpj.exe"'.encode(),
        b'filename="<svg onload=alert(1)>.svg"',
    ]
    raw = multipart(
        *(
            b"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; " + h + b"\r\n\r\nx"
            for h in hostile
        )
    )
    attachments = parse_message(raw).attachments
    assert [a.filename for a in attachments] == [
        "passwd",
        "evil .txt",
        "secret",
        "reportgpj.exe",
        "_svg onload=alert(1)_.svg",
    ]
    assert attachments[0].original_filename == "../../etc/passwd"
    assert attachments[2].original_filename == "%2e%2e%2fsecret"
    assert attachments[3].original_filename == "report\u202egpj.exe"
    assert all(no_controls(a.original_filename) for a in attachments)


def test_it_resolves_cid_images_without_content_disposition():
    png = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode().encode()
    raw = multipart(
        b'Content-Type: text/html; charset=utf-8\r\n\r\n<p>Logo: <img src="cid:logo123@example.org"></p>',
        b"Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\nContent-ID: <logo123@example.org>\r\n\r\n"
        + png,
        b"Content-Type: image/jpeg; name=photo.jpg\r\nContent-ID: <unused@x>\r\n\r\njpeg",
        subtype=b"related",
    )
    parsed = parse_message(raw)
    logo, photo = parsed.attachments
    assert (logo.content_id, logo.inline, logo.filename, logo.data[:4]) == (
        "logo123@example.org",
        True,
        "attachment.png",
        b"\x89PNG",
    )
    assert (photo.inline, photo.filename) == (False, "photo.jpg")  # not referenced: listed as an attachment
    html = resolve_cids(parsed.html, {"logo123@example.org": "/a/1/"}.get)
    assert '<img src="/a/1/">' in html


# ---------------------------------------------------------------------------------------------------------------
# Hostile inputs


def test_it_survives_10000_nested_multiparts():
    n = 10_000
    body = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i) for i in range(n)
    )
    raw = (
        HEAD
        + body
        + b"Content-Type: text/plain\r\n\r\nhello\r\n"
        + b"".join(b"--b%d--\r\n" % i for i in range(n))
    )
    parsed = timed(raw)
    assert parsed.subject == "test" and parsed.parse_error is None
    assert any("nesting deeper" in d for d in parsed.defects)
    same = HEAD + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n' * n + b"\r\nhello\r\n"
    assert timed(same).subject == "test"
    rfc822 = HEAD + b"Content-Type: message/rfc822\r\n\r\n" * n + b"Subject: inner\r\n\r\nhello\r\n"
    assert timed(rfc822).subject == "test"


def test_it_survives_a_million_tiny_parts():
    raw = message(b"--b\r\n\r\nx\r\n" * 1_000_000 + b"--b--\r\n", b'multipart/mixed; boundary="b"')
    parsed = timed(raw)
    assert any("more than 1000 parts" in d for d in parsed.defects)
    assert len(parsed.message.get_payload()) <= 1000


def test_it_survives_five_megabytes_of_headers():
    many = HEAD + b"".join(b"X-Junk-%d: %s\r\n" % (i, b"v" * 60) for i in range(70_000)) + b"\r\nbody\r\n"
    parsed = timed(many)
    assert parsed.subject == "test" and parsed.text == "body"
    assert any("header block larger" in d for d in parsed.defects)
    one = HEAD + b"X-Long: " + b"a" * 5_000_000 + b"\r\n\r\nbody\r\n"
    assert timed(one).text == "body"
    folded = b"From: a@example.org\r\nSubject: " + b"x\r\n " * 1_000_000 + b"\r\n\r\nbody\r\n"
    parsed = timed(folded)
    assert len(parsed.subject) <= 1000 and no_controls(parsed.subject)


def test_it_decodes_a_30_megabyte_base64_attachment_in_bounded_memory():
    data = bytes(range(256)) * (30 * 1024 * 1024 // 256)
    encoded = base64.encodebytes(data).replace(b"\n", b"\r\n")
    raw = multipart(
        b"Content-Type: text/plain\r\n\r\nsee attached",
        b"Content-Type: application/octet-stream; name=big.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + encoded,
    )
    del encoded
    tracemalloc.start()
    try:
        parsed = timed(raw, 5.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert parsed.attachments[0].data == data and parsed.attachments[0].size == len(data)
    assert peak < 2.5 * len(raw), f"peak {peak / 1e6:.0f} MB for a {len(raw) / 1e6:.0f} MB message"


def test_it_keeps_html_and_script_in_headers_as_plain_text():
    head = (
        b'From: "<script>alert(1)</script>" <evil@example.org>\r\n'
        b"Subject: <svg onload=alert(1)><img src=x onerror=alert(2)>\r\n"
    )
    raw = message(b"<script>alert(3)</script>", head=head)
    parsed = parse_message(raw)
    assert parsed.subject == "<svg onload=alert(1)><img src=x onerror=alert(2)>"  # text, escaped where shown
    assert parsed.from_ == Address("<script>alert(1)</script>", "evil@example.org")
    assert parsed.text == "<script>alert(3)</script>" and parsed.html == ""


def test_it_neutralises_html_svg_and_javascript_in_bodies():
    raw = message(
        b'<svg><script>alert(1)</script></svg><a href="javascript:alert(2)">x</a><iframe src="http://x"></iframe>'
        b'<img src=x onerror="alert(3)"><form action="http://x"><input></form><p>kept</p>',
        b"text/html",
    )
    parsed = parse_message(raw)
    for bad in ("<svg", "<script", "javascript:", "<iframe", "onerror", "<form", "<input", "alert(1)"):
        assert bad not in parsed.html
    assert "<p>kept</p>" in parsed.html


def test_it_survives_hostile_html_quickly():
    for pattern in ("<div>", "<dl><dd>", "<div><b title=%d>x</div>", "<a><div>"):
        html = "".join((pattern % i) if "%d" in pattern else pattern for i in range(20_000)).encode()
        parsed = timed(message(html, b"text/html"), 3.0)
        assert parsed.parse_error is None
    many_attributes = b"<div " + b" ".join(b"a%d=1" for i in range(100_000)) + b">x</div>"
    assert timed(message(many_attributes, b"text/html"), 3.0).text == "x"


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.sampled_from(
            [
                b"Content-Type: multipart/mixed; boundary=b\r\n",
                b'Content-Type: multipart/alternative; boundary="c"\r\n',
                b"Content-Type: message/rfc822\r\n",
                b"Content-Type: message/delivery-status\r\n",
                b"Content-Type: text/html; charset=utf-8\r\n",
                b"Content-Type: text/plain; charset=bogus\r\n",
                b"Content-Transfer-Encoding: base64\r\n",
                b"Content-Transfer-Encoding: quoted-printable\r\n",
                b"Content-Disposition: attachment; filename*0*=utf-8''%FF; filename*1=x\r\n",
                b"Content-ID: <x@y>\r\n",
                b"Subject: =?utf-8?B?w6k?=\r\n",
                b'From: "a" <b@c>, (d\r\n',
                b"\r\n",
                b"--b\r\n",
                b"--b--\r\n",
                b"--c\r\n",
                b"<p>hi<img src=cid:x@y>\r\n",
                b"=E9=\r\n",
                b"QUJD\r\n",
                b"\xff\xfe\x00\r\n",
                b"begin 644 x\r\n",
            ]
        ),
        max_size=40,
    ),
    st.binary(max_size=40),
)
def test_it_never_raises_on_mime_like_garbage(lines, noise):
    parsed = parse_message(b"".join(lines) + noise)
    assert parsed.parse_error is None or parsed.message is None or not parsed.message.keys()
    assert no_controls(parsed.subject)
    assert all(no_controls(a.original_filename) and a.filename for a in parsed.attachments)


@settings(max_examples=200, deadline=None, database=None)
@given(st.binary(max_size=2000))
def test_it_never_raises_on_random_bytes(data):
    parse_message(data)
    parse_message(HEAD + data)


# ---------------------------------------------------------------------------------------------------------------
# Excerpts


def test_it_makes_an_excerpt_from_the_first_lines_without_quotes():
    text = "\n\n  Hello   team,\nthe printer\tis broken.\n> old quoted text\nBye"
    assert first_line(text) == "Hello team, the printer is broken. Bye"
    assert first_line("> only quoted\n> text") == "only quoted"
    long = first_line("word " * 100, 50)
    assert len(long) <= 50 and long.endswith("…")
    assert first_line("") == ""
