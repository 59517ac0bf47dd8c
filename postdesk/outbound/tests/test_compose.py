"""compose: messages as bytes, header injection refused, templates rendered by substitution."""

from __future__ import annotations

import email
import email.header
import email.policy
import html as html_lib
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postdesk.outbound.compose import (
    HeaderInjectionError,
    InvalidAddressError,
    build_message,
    format_address,
    format_date,
    iter_html_tags,
    make_message_id,
    prepare_template,
    validate_address,
    validate_header_value,
)

DATE = datetime(2024, 3, 5, 14, 7, 9, tzinfo=timezone(timedelta(hours=1)))
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Header text: no controls (refused), no surrogates (not encodable), no line/paragraph separators (refused).
header_text = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=200)
body_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=600)


def build(**overrides) -> bytes:
    kwargs = dict(
        from_address="support@example.com",
        from_name="Support",
        to=["customer@example.org"],
        subject="Re: your order",
        text="Hello,\nyour order has shipped.\n",
        message_id="<abc.123@example.com>",
        date=DATE,
    )
    kwargs.update(overrides)
    return build_message(**kwargs)


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def head_of(raw: bytes) -> str:
    return raw.split(b"\r\n\r\n", 1)[0].decode("ascii")


def body_content(part) -> str:
    return part.get_content().replace("\r\n", "\n")


def exact_header(raw: bytes, name: str) -> str:
    """The unfolded value of header ``name``, its RFC 2047 words decoded exactly (the stdlib parser strips
    Unicode whitespace it finds at the ends of decoded words)."""
    m = re.search(rb"^" + name.encode() + rb": ?(.*?)\r\n(?=\S)", raw, re.M | re.S | re.I)
    value = m.group(1).replace(b"\r\n", b"").decode("ascii")
    if "=?" not in value:
        return value
    out = []
    for part, charset in email.header.decode_header(value):
        out.append(part.decode(charset or "ascii") if isinstance(part, bytes) else part)
    return "".join(out)


def newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def normalized(text: str) -> str:
    s = newlines(text)
    return s + "\n" if s and not s.endswith("\n") else s


def assert_wire_safe(raw: bytes) -> None:
    assert raw.count(b"\n") == raw.count(b"\r\n"), "bare LF"
    assert raw.count(b"\r") == raw.count(b"\r\n"), "bare CR"
    assert raw.endswith(b"\r\n")
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert b"\x00" not in raw
    assert all(b < 0x80 for b in raw), "8-bit data on the wire"
    assert b"\r\n.\r\n" not in raw, "a lone dot line"
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert all(len(line) <= 76 for line in head if b"=?" in line), "RFC 2047 2: encoded-word lines <= 76"


# ------------------------------------------------------------------------------------------ header values


@pytest.mark.parametrize(
    "value",
    ["a\rb", "a\nb", "a\r\nBcc: x@evil.com", "\x00", "a\x1bb", "a\x7fb", "a\x85b", "a\u2028b", "a\u2029b"],
)
def test_it_refuses_line_breaks_and_controls_in_header_values(value):
    with pytest.raises(HeaderInjectionError) as e:
        validate_header_value("Subject", value)
    assert e.value.field == "Subject"
    assert isinstance(e.value, ValueError)
    assert e.value.http_status == 400


def test_it_accepts_ordinary_header_values_including_tabs_and_unicode():
    for value in ["", "Re: order #1", "a\tb", "Café — 東京"]:
        assert validate_header_value("Subject", value) == value


# --------------------------------------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    "address,expected",
    [
        ("jane@example.com", "jane@example.com"),
        ("  Jane.Doe+tag@Example.COM ", "Jane.Doe+tag@example.com"),
        ("o'brien@example.ie", "o'brien@example.ie"),
        ("x@bücher.de", "x@xn--bcher-kva.de"),
        ("x@sub.domain-with-dash.example", "x@sub.domain-with-dash.example"),
    ],
)
def test_it_returns_the_bare_addr_spec_of_a_valid_address(address, expected):
    assert validate_address("To", address) == expected


@pytest.mark.parametrize(
    "address",
    [
        "",
        "jane",
        "@example.com",
        "jane@",
        "jane@@example.com",
        "a@b@example.com",
        "jane@example.com, evil@example.com",
        "jane@example.com;evil@example.com",
        "Jane <jane@example.com>",
        "jane@example.com>",
        "<jane@example.com>",
        "jane @example.com",
        '"jane"@example.com',
        "jane.@example.com",
        ".jane@example.com",
        "ja..ne@example.com",
        "jöhn@example.com",
        "jane@localhost",
        "jane@[127.0.0.1]",
        "jane@127.0.0.1",
        "jane@-example.com",
        "jane@example-.com",
        "jane@exa_mple.com",
        "jane@example..com",
        "jane@example.com.",
        "x" * 65 + "@example.com",
        "x@" + ("a" * 63 + ".") * 4 + "com",
        "group: jane@example.com;",
    ],
)
def test_it_refuses_anything_but_one_valid_bare_address(address):
    with pytest.raises(InvalidAddressError) as e:
        validate_address("Cc", address)
    assert e.value.field == "Cc"


@pytest.mark.parametrize(
    "address", ["jane@example.com\r\nBcc: evil@example.com", "jane@example.com\n", "j\x00@example.com"]
)
def test_it_refuses_line_breaks_in_addresses_as_header_injection(address):
    with pytest.raises(HeaderInjectionError):
        validate_address("To", address)


def test_it_formats_display_names_plain_quoted_or_rfc2047():
    assert format_address("", "a@example.com") == "a@example.com"
    assert format_address(None, "a@example.com") == "a@example.com"
    assert format_address("Jane Doe", "a@example.com") == "Jane Doe <a@example.com>"
    assert format_address("Doe, Jane", "a@example.com") == '"Doe, Jane" <a@example.com>'
    assert format_address('Jane "JD" \\ Doe', "a@example.com") == '"Jane \\"JD\\" \\\\ Doe" <a@example.com>'
    assert format_address("=?utf-8?q?x?=", "a@example.com") == '"=?utf-8?q?x?=" <a@example.com>'
    encoded = format_address("Zoë Ågren", "a@example.com")
    assert encoded.isascii() and encoded.startswith("=?utf-8?")
    header = parse(f"From: {encoded}\r\n\r\n".encode())["from"]
    assert header.addresses[0].display_name == "Zoë Ågren"
    assert header.addresses[0].addr_spec == "a@example.com"


def test_it_refuses_display_names_with_line_breaks_or_excessive_length():
    with pytest.raises(HeaderInjectionError):
        format_address("Jane\r\nBcc: evil@example.com", "a@example.com")
    with pytest.raises(HeaderInjectionError):
        format_address("x" * 300, "a@example.com")


@given(name=header_text)
@PROPERTY
def test_it_round_trips_any_display_name_through_the_stdlib_parser(name):
    raw = build(from_name=name)
    assert_wire_safe(raw)
    parsed = parse(raw)["from"].addresses[0]
    assert parsed.addr_spec == "support@example.com"
    # Python 3.11's phrase parser puts a space between adjacent encoded-words (RFC 2047 6.2 says to ignore
    # it), so compare its reading without whitespace and check the exact decoding with decode_header.
    assert "".join(parsed.display_name.split()) == "".join(name.split())
    if not name.isascii():
        assert exact_header(raw, "From") == name.strip(" \t") + " <support@example.com>"


# --------------------------------------------------------------------------------------- ids and dates


def test_it_makes_unique_valid_message_ids_with_punycode_domains():
    ids = {make_message_id("example.com") for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"<[0-9a-f]+\.[0-9a-f]{20}@example\.com>", i) for i in ids)
    assert make_message_id("Bücher.de").endswith("@xn--bcher-kva.de>")
    with pytest.raises(HeaderInjectionError):
        make_message_id("example.com>\r\nBcc: x@y.z")


def test_it_formats_dates_in_rfc5322_with_their_own_offset():
    assert format_date(DATE) == "Tue, 05 Mar 2024 14:07:09 +0100"
    assert format_date(datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC)) == "Tue, 31 Dec 2024 23:59:59 +0000"
    minus = datetime(2024, 1, 1, 0, 0, tzinfo=timezone(-timedelta(hours=5, minutes=30)))
    assert format_date(minus) == "Mon, 01 Jan 2024 00:00:00 -0530"
    assert email.utils.parsedate_to_datetime(format_date(minus)) == minus
    with pytest.raises(ValueError):
        format_date(datetime(2024, 1, 1))


def test_it_writes_threading_headers_and_drops_malformed_inbound_ids():
    raw = build(
        in_reply_to="<parent@mail.example.org>",
        references=["root@x.org", "<bad id@x>", "<parent@mail.example.org>"],
    )
    head = head_of(raw)
    assert "In-Reply-To: <parent@mail.example.org>\r\n" in head
    assert "References: <root@x.org> <parent@mail.example.org>\r\n" in head
    assert "In-Reply-To" not in head_of(build(in_reply_to="not an id"))
    with pytest.raises(HeaderInjectionError):
        build(in_reply_to="<a@b>\r\nBcc: evil@example.com")
    with pytest.raises(HeaderInjectionError):
        build(references=["<a@b>", "<c@d>\nBcc: evil@example.com"])


def test_it_keeps_the_root_and_the_latest_references_of_a_long_thread():
    refs = [f"<m{i}@example.org>" for i in range(50)]
    parsed = parse(build(references=refs))
    kept = str(parsed["references"]).split()
    assert kept[0] == "<m0@example.org>" and kept[-1] == "<m49@example.org>" and len(kept) == 20
    assert all(len(line) <= 78 for line in head_of(build(references=refs)).split("\r\n"))


def test_it_refuses_a_malformed_message_id_of_its_own():
    for bad in ["<no-at>", "<a b@c>", "<a@b>\r\n", "<a@b><c@d>"]:
        with pytest.raises(HeaderInjectionError):
            build(message_id=bad)
    assert "Message-ID: <x@y.z>\r\n" in head_of(build(message_id="x@y.z"))


# ------------------------------------------------------------------------------------------ whole message


def test_it_builds_a_plain_ascii_reply_as_7bit_with_crlf_line_endings():
    raw = build(
        cc=[("Agent Smith", "agent@example.com")],
        reply_to="replies@example.com",
        headers={"X-Postdesk-Id": "42"},
    )
    assert_wire_safe(raw)
    head = head_of(raw)
    assert head.startswith("From: Support <support@example.com>\r\nTo: customer@example.org\r\n")
    assert "Cc: Agent Smith <agent@example.com>\r\n" in head
    assert "Reply-To: replies@example.com\r\n" in head
    assert "Subject: Re: your order\r\n" in head
    assert "Date: Tue, 05 Mar 2024 14:07:09 +0100\r\n" in head
    assert "MIME-Version: 1.0\r\n" in head
    assert "X-Postdesk-Id: 42\r\n" in head
    assert "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit" in head
    assert raw.endswith(b"\r\n\r\nHello,\r\nyour order has shipped.\r\n")
    msg = parse(raw)
    assert msg.defects == []
    assert body_content(msg) == "Hello,\nyour order has shipped.\n"


def test_it_uses_quoted_printable_for_non_ascii_long_lines_controls_and_lone_dots():
    for text in [
        "Grüße\n",
        "x" * 79 + "\n",
        "a\x0cb\n",
        "line\n.\nmore\n",
        ".\n",
        "tab\there and trailing \n",
    ]:
        raw = build(text=text)
        assert_wire_safe(raw)
        cte = parse(raw)["content-transfer-encoding"]
        expected = "7bit" if text.startswith("tab") else "quoted-printable"
        assert cte == expected, text
        assert body_content(parse(raw)) == text
    assert b"\r\n=2E\r\n" in build(text="line\n.\nmore\n")


def test_it_keeps_quoted_printable_lines_within_76_even_when_they_end_in_whitespace():
    # binascii.b2a_qp alone lets such lines reach 78 characters (RFC 2045 6.7 allows 76).
    for k in range(120):
        for tail in [" ", "\t", "  ", " \t "]:
            for filler in ["\x1f", "é", "a", "=", "a\x1f"]:
                text = filler * k + tail + "\nnext" + filler * k + tail
                raw = build(text=text)
                assert_wire_safe(raw)
                limit = 76 if b"quoted-printable" in raw else 78
                assert all(len(line) <= limit for line in raw.split(b"\r\n\r\n", 1)[1].split(b"\r\n"))
                assert body_content(parse(raw)) == text + "\n"


def test_it_normalises_every_kind_of_line_ending_to_crlf():
    raw = build(text="a\rb\nc\r\nd\n\re")
    assert_wire_safe(raw)
    assert body_content(parse(raw)) == "a\nb\nc\nd\n\ne\n"


def test_it_writes_an_empty_body_and_keeps_trailing_blank_lines():
    raw = build(text="")
    assert raw.endswith(b"7bit\r\n\r\n")
    assert body_content(parse(raw)) == ""
    assert body_content(parse(build(text="hi\n\n\n"))) == "hi\n\n\n"


def test_it_addresses_undisclosed_recipients_when_there_is_no_to_or_cc():
    assert "To: undisclosed-recipients:;\r\n" in head_of(build(to=[]))
    head = head_of(build(to=[], cc=["a@example.com"]))
    assert "\r\nCc: a@example.com\r\n" in head and "\r\nTo:" not in head


def test_it_folds_long_address_lists_and_subjects_at_78_columns():
    to = [(f"Customer Number {i}", f"customer{i}@example.org") for i in range(30)]
    subject = "Re: " + " ".join(["word"] * 60)
    raw = build(to=to, subject=subject)
    assert_wire_safe(raw)
    lines = head_of(raw).split("\r\n")
    assert all(len(line) <= 78 for line in lines)
    msg = parse(raw)
    assert [a.addr_spec for a in msg["to"].addresses] == [a for _, a in to]
    assert msg["subject"] == subject


def test_it_encodes_non_ascii_and_encoded_word_lookalike_subjects():
    for subject in [
        "Ihre Bestellung für Café",
        "注文の確認 " * 20,
        "about =?utf-8?q?x?= literally",
        "x" * 200,
    ]:
        raw = build(subject=subject)
        assert_wire_safe(raw)
        lines = head_of(raw).split("\r\n")
        assert all(len(line) <= 78 for line in lines if not line.startswith("Subject:")), subject
        assert all(len(line) <= 78 for line in lines), subject
        assert parse(raw)["subject"] == subject


def test_it_never_writes_a_bcc_header_and_refuses_builder_owned_extra_headers():
    assert b"bcc" not in build().lower()
    for name in ["Bcc", "bcc", "From", "To", "Content-Type", "Subject", "MIME-Version", "DKIM-Signature"]:
        with pytest.raises(HeaderInjectionError) as e:
            build(headers={name: "x"})
        assert e.value.field == name


@pytest.mark.parametrize("name", ["X-A\r\nBcc", "X A", "X:A", "", "Ünï"])
def test_it_refuses_invalid_extra_header_names(name):
    with pytest.raises(HeaderInjectionError):
        build(headers={name: "1"})


def test_it_keeps_list_unsubscribe_on_one_line_when_it_fits():
    url = "https://postdesk.example.com/u/" + "a" * 60
    raw = build(
        headers={
            "List-Unsubscribe": f"<{url}>, <mailto:u@example.com>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }
    )
    assert f"List-Unsubscribe: <{url}>, <mailto:u@example.com>\r\n" in head_of(raw)


@pytest.mark.parametrize(
    "field,overrides",
    [
        ("Subject", {"subject": "Hi\r\nBcc: evil@example.com"}),
        ("Subject", {"subject": "Hi\nthere"}),
        ("From", {"from_name": "Support\r\nBcc: evil@example.com"}),
        ("From", {"from_address": "support@example.com\r\nBcc: evil@example.com"}),
        ("To", {"to": ["a@example.org\r\nBcc: evil@example.com"]}),
        ("To", {"to": [("Name\nX", "a@example.org")]}),
        ("Cc", {"cc": ["a@example.org\nBcc: evil@example.com"]}),
        ("Reply-To", {"reply_to": "a@example.org\rBcc: evil@example.com"}),
        ("X-Postdesk-Id", {"headers": {"X-Postdesk-Id": "1\r\nBcc: evil@example.com"}}),
        ("attachment filename", {"attachments": [("a.pdf\r\nX-Evil: 1", "application/pdf", b"x")]}),
        ("attachment content type", {"attachments": [("a.pdf", "application/pdf\r\nX-Evil: 1", b"x")]}),
    ],
)
def test_it_refuses_cr_or_lf_anywhere_in_a_header_before_building(field, overrides):
    with pytest.raises(HeaderInjectionError) as e:
        build(**overrides)
    assert e.value.field == field


def test_it_refuses_several_addresses_smuggled_into_one_recipient():
    for to in ["a@example.org, evil@example.com", "a@example.org>,<evil@example.com"]:
        with pytest.raises(InvalidAddressError):
            build(to=[to])


def test_it_builds_multipart_alternative_when_there_is_html():
    raw = build(text="Plain é\n", html="<p>Rich é</p>")
    assert_wire_safe(raw)
    msg = parse(raw)
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert body_content(msg.get_body(("plain",))) == "Plain é\n"
    assert body_content(msg.get_body(("html",))) == "<p>Rich é</p>\n"
    assert msg.defects == []


def test_it_attaches_files_base64_with_rfc2231_names_in_multipart_mixed():
    data = bytes(range(256)) * 40
    long_name = "Relevé de compte — " + "très " * 20 + ".pdf"
    raw = build(
        html="<p>x</p>",
        attachments=[
            ("C:\\Users\\me\\facture n°1.pdf", "application/pdf", data),
            (long_name, "Application/PDF", b"%PDF"),
            ("plain.txt", "text/plain; charset=ISO-8859-1", "é".encode("latin-1")),
            ("fwd.eml", "message/rfc822", b"From: a@b.c\r\n\r\nhi\r\n"),
            ("../../etc/passwd", "not a type", b"x"),
            ("", "application/octet-stream", b""),
        ],
    )
    assert_wire_safe(raw)
    msg = parse(raw)
    assert msg.get_content_type() == "multipart/mixed"
    parts = list(msg.iter_attachments())
    assert [p.get_filename() for p in parts] == [
        "facture n°1.pdf",
        long_name,
        "plain.txt",
        "fwd.eml",
        "passwd",
        "attachment",
    ]
    assert [p.get_content_type() for p in parts] == [
        "application/pdf",
        "application/pdf",
        "text/plain",
        "application/octet-stream",
        "application/octet-stream",
        "application/octet-stream",
    ]
    assert parts[0].get_payload(decode=True) == data
    assert parts[2].get_content() == "é"
    assert parts[3].get_payload(decode=True) == b"From: a@b.c\r\n\r\nhi\r\n"
    assert all(p["content-transfer-encoding"] == "base64" for p in parts)
    assert msg.get_body(("html",)).get_content_type() == "text/html"
    assert all(len(line) <= 78 for line in raw.decode("ascii").split("\r\n"))


def test_it_never_lets_a_7bit_body_collide_with_a_boundary():
    raw = build(text="--=_pd" + "0" * 24 + "\n", html="<p>--=_pd</p>")
    msg = parse(raw)
    assert body_content(msg.get_body(("plain",))) == "--=_pd" + "0" * 24 + "\n"


@given(subject=header_text, name=header_text, text=body_text, html=st.none() | body_text)
@PROPERTY
def test_it_round_trips_any_subject_name_and_bodies_through_the_stdlib_parser(subject, name, text, html):
    raw = build(subject=subject, from_name=name, to=[(name, "customer@example.org")], text=text, html=html)
    assert_wire_safe(raw)
    msg = parse(raw)
    assert exact_header(raw, "Subject") == subject or (subject.isascii() and msg["subject"] == subject)
    assert "".join(msg["from"].addresses[0].display_name.split()) == "".join(name.split())
    if not name.isascii():
        assert exact_header(raw, "From").endswith(name.strip(" \t") + " <support@example.com>")
    assert body_content(msg.get_body(("plain",))) == normalized(text)
    if html is not None:
        assert body_content(msg.get_body(("html",))) == normalized(html)


# -------------------------------------------------------------------------------------------- templates

TEXT_TEMPLATE = (
    "Hello {{ first_name }},\n\nYour code is {{code}}.\n"
    + "Static line that is long enough to need a soft break in quoted-printable. " * 2
    + "\nBye\n"
)
HTML_TEMPLATE = (
    "<html><body><p>Hello {{ first_name }},</p>\n<p>Code: <b>{{ code }}</b></p>\n"
    '<p><a href="{{ unsubscribe_url }}" title="{{ first_name }}">Unsubscribe</a></p>\n</body></html>'
)


def prepared(**overrides):
    kwargs = dict(
        from_address="news@example.com",
        from_name="Example Shop",
        subject_template="{{ first_name }}, your code {{ code }}",
        text_template=TEXT_TEMPLATE,
        html_template=HTML_TEMPLATE,
        headers={"Precedence": "bulk"},
    )
    kwargs.update(overrides)
    return prepare_template(**kwargs)


FIELDS = {"first_name": "Zoë", "code": "A=1", "unsubscribe_url": "https://pd.example.com/u/tok"}


def test_it_lists_the_fields_a_template_uses():
    assert prepared().field_names == {"first_name", "code", "unsubscribe_url"}


def test_it_renders_a_template_like_building_the_same_message_directly():
    pm = prepared()
    raw = pm.render(
        ("Zoë Ågren", "zoe@example.org"), FIELDS, "<m1@example.com>", {"X-Campaign": "7"}, date=DATE
    )
    assert_wire_safe(raw)
    msg = parse(raw)
    assert msg.defects == []
    assert msg["subject"] == "Zoë, your code A=1"
    assert msg["to"].addresses[0].display_name == "Zoë Ågren"
    assert msg["message-id"] == "<m1@example.com>"
    assert msg["date"] == "Tue, 05 Mar 2024 14:07:09 +0100"
    assert msg["x-campaign"] == "7" and msg["precedence"] == "bulk"
    expected_text = TEXT_TEMPLATE.replace("{{ first_name }}", "Zoë").replace("{{code}}", "A=1")
    assert body_content(msg.get_body(("plain",))) == expected_text
    html = body_content(msg.get_body(("html",)))
    assert '<a href="https://pd.example.com/u/tok" title="Zoë">' in html
    direct = parse(
        build_message(
            from_address="news@example.com",
            from_name="Example Shop",
            to=[("Zoë Ågren", "zoe@example.org")],
            subject="Zoë, your code A=1",
            text=expected_text,
            html=html,
            message_id="<m1@example.com>",
            date=DATE,
        )
    )
    assert body_content(direct.get_body(("plain",))) == expected_text
    assert body_content(direct.get_body(("html",))) == html


def test_it_escapes_field_values_in_html_and_keeps_them_raw_in_text():
    evil = {
        "first_name": '<script>alert("x")</script>&',
        "code": "'",
        "unsubscribe_url": "https://x.example/?a=1&b=2",
    }
    msg = parse(prepared().render("zoe@example.org", evil, "<m1@example.com>"))
    html = body_content(msg.get_body(("html",)))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in html
    assert 'href="https://x.example/?a=1&amp;b=2"' in html
    assert '<script>alert("x")</script>&' in body_content(msg.get_body(("plain",)))


def test_it_refuses_a_non_http_url_in_a_field_that_starts_a_link():
    pm = prepared()
    for url in ["javascript:alert(1)", " javascript:alert(1)", "data:text/html,x", "//evil.example/"]:
        with pytest.raises(ValueError):
            pm.render("zoe@example.org", {**FIELDS, "unsubscribe_url": url}, "<m1@example.com>")
    pm.render("zoe@example.org", {**FIELDS, "unsubscribe_url": "mailto:u@example.com"}, "<m1@example.com>")


@pytest.mark.parametrize(
    "html",
    [
        "<a href={{ url }}>x</a>",
        "<a href=https://x/{{ url }}>x</a>",
        "<a {{ attrs }}>x</a>",
        "<td width=1 {{ attrs }}>",
        "<script>var x = '{{ name }}';</script>",
        "<style>p { color: {{ color }} }</style>",
    ],
)
def test_it_refuses_fields_where_html_escaping_is_not_enough(html):
    with pytest.raises(ValueError):
        prepared(html_template=html)


def test_it_allows_fields_in_quoted_attributes_text_and_titles():
    pm = prepared(
        html_template='<title>{{ a }}</title><img alt="{{ a }}" src="https://x/{{ b }}"><p data-x=\'{{ a }}\'>{{ a }} = {{ b }}</p>'
    )
    raw = pm.render("a@example.org", {"a": '"><x', "b": "1"}, "<m@x.y>")
    html = body_content(parse(raw).get_body(("html",)))
    assert html.count("&quot;&gt;&lt;x") == 4


def test_it_refuses_line_breaks_in_fields_that_land_in_the_subject():
    with pytest.raises(HeaderInjectionError) as e:
        prepared().render(
            "a@example.org", {**FIELDS, "first_name": "Zoë\r\nBcc: evil@example.com"}, "<m@x.y>"
        )
    assert e.value.field == "first_name"


def test_it_accepts_line_breaks_in_fields_that_land_in_bodies():
    pm = prepared(subject_template="Static subject")
    raw = pm.render("a@example.org", {**FIELDS, "first_name": "Zoë\r\nÅgren\rX"}, "<m@x.y>")
    assert_wire_safe(raw)
    assert body_content(parse(raw).get_body(("plain",))).startswith("Hello Zoë\nÅgren\nX,\n")


def test_it_renders_missing_fields_as_empty_and_converts_other_types():
    raw = prepared().render("a@example.org", {"code": 42}, "<m@x.y>")
    msg = parse(raw)
    assert msg["subject"] == ", your code 42"
    assert body_content(msg.get_body(("plain",))).startswith("Hello ,\n\nYour code is 42.\n")


def test_it_validates_the_recipient_message_id_and_extra_headers_of_each_render():
    pm = prepared()
    with pytest.raises(InvalidAddressError):
        pm.render("a@example.org, b@example.org", FIELDS, "<m@x.y>")
    with pytest.raises(HeaderInjectionError):
        pm.render("a@example.org\r\nBcc: evil@example.com", FIELDS, "<m@x.y>")
    with pytest.raises(HeaderInjectionError):
        pm.render("a@example.org", FIELDS, "<m@x.y>\r\nBcc: x@y.z")
    with pytest.raises(HeaderInjectionError):
        pm.render("a@example.org", FIELDS, "<m@x.y>", {"Bcc": "evil@example.com"})
    with pytest.raises(HeaderInjectionError):
        pm.render("a@example.org", FIELDS, "<m@x.y>", {"List-Unsubscribe": "<https://x>\r\nBcc: e@x.y"})


def test_it_renders_text_only_templates_with_attachments_and_a_current_date():
    pm = prepared(html_template=None, attachments=[("tarif.pdf", "application/pdf", b"%PDF-1.4")])
    raw = pm.render("a@example.org", FIELDS, "<m@x.y>")
    assert_wire_safe(raw)
    msg = parse(raw)
    assert msg.get_content_type() == "multipart/mixed"
    assert [p.get_filename() for p in msg.iter_attachments()] == ["tarif.pdf"]
    assert abs((msg["date"].datetime - datetime.now(UTC)).total_seconds()) < 5


def test_it_renders_static_subjects_and_empty_bodies():
    pm = prepared(subject_template="Nouveautés", text_template="", html_template="")
    raw = pm.render("a@example.org", {}, "<m@x.y>")
    assert_wire_safe(raw)
    msg = parse(raw)
    assert msg["subject"] == "Nouveautés"
    assert body_content(msg.get_body(("plain",))) == ""


field_value = st.text(st.characters(blacklist_categories=("Cs",)), max_size=120)


@given(a=field_value, b=field_value, literal=body_text)
@PROPERTY
def test_it_renders_any_field_values_exactly_as_the_substituted_template(a, b, literal):
    literal = literal.replace("{", "(").replace("<", "(")
    template = literal + "{{ a }}" + literal[: len(literal) // 2] + "{{ b }}\n" + literal
    html_template = "<p>{{ a }}</p>" + literal + "<i>{{ b }}</i>"
    pm = prepare_template(
        from_address="n@example.com",
        subject_template="S",
        text_template=template,
        html_template=html_template,
    )
    raw = pm.render("r@example.org", {"a": a, "b": b}, "<m@x.y>")
    assert_wire_safe(raw)
    assert all(len(line) <= 76 for line in raw.split(b"\r\n\r\n", 1)[1].split(b"\r\n"))
    msg = parse(raw)
    # Line breaks are normalised in the template and in each value separately.
    values = {"a": newlines(a), "b": newlines(b)}
    expected_text = re.sub(r"\{\{ (a|b) \}\}", lambda m: values[m.group(1)], newlines(template))
    assert body_content(msg.get_body(("plain",))) == normalized(expected_text)
    values = {"a": newlines(html_lib.escape(a)), "b": newlines(html_lib.escape(b))}
    expected_html = re.sub(r"\{\{ (a|b) \}\}", lambda m: values[m.group(1)], newlines(html_template))
    assert body_content(msg.get_body(("html",))) == normalized(expected_html)


@given(subject_value=header_text)
@PROPERTY
def test_it_encodes_any_subject_field_value_so_that_it_decodes_back(subject_value):
    pm = prepare_template(from_address="n@example.com", subject_template="Hi {{ x }}!", text_template="t")
    raw = pm.render("r@example.org", {"x": subject_value}, "<m@x.y>")
    assert_wire_safe(raw)
    assert (
        exact_header(raw, "Subject") == f"Hi {subject_value}!"
        or parse(raw)["subject"] == f"Hi {subject_value}!"
    )


# ------------------------------------------------------------------------------------------ HTML scanning


def test_it_scans_html_tags_like_a_browser_tokeniser():
    html = '<!-- <a href="c"> --><a title=">" href=\'x\' data-y=z checked><script>"<a href=s>"</script><abbr><A HREF=u>'
    tags = [(t.name, [(n, html[s:e], q) for n, s, e, q in t.attrs]) for t in iter_html_tags(html)]
    assert tags == [
        ("a", [("title", ">", '"'), ("href", "x", "'"), ("data-y", "z", ""), ("checked", "", None)]),
        ("script", []),
        ("abbr", []),
        ("a", [("href", "u", "")]),
    ]
    assert list(iter_html_tags('<a href="unterminated')) == []
