"""tracking: signed opaque tokens, link rewriting, the open pixel and RFC 8058 headers."""

from __future__ import annotations

import base64
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postdesk.outbound.compose import HeaderInjectionError, prepare_template
from postdesk.outbound.tracking import (
    KIND_CLICK,
    KIND_OPEN,
    KIND_UNSUBSCRIBE,
    derive_key,
    insert_open_pixel,
    is_safe_target,
    list_unsubscribe_headers,
    make_tracking_token,
    open_pixel_html,
    read_tracking_token,
    rewrite_links,
    sign_token,
    verify_token,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


# ------------------------------------------------------------------------------------------------ tokens


def test_it_signs_and_verifies_a_short_url_safe_token():
    token = sign_token(b"payload", KEY)
    assert verify_token(token, KEY) == b"payload"
    assert sign_token("payload", KEY) == token
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert len(token) <= 32


def test_it_refuses_a_token_signed_with_another_key_or_purpose():
    token = sign_token(b"payload", KEY, purpose="click")
    assert verify_token(token, KEY, purpose="click") == b"payload"
    assert verify_token(token, OTHER_KEY, purpose="click") is None
    assert verify_token(token, KEY, purpose="open") is None
    assert verify_token(token, KEY) is None


def test_it_refuses_every_single_character_change_to_a_token():
    token = sign_token(b"\x01\x02email-42", KEY)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for i in range(len(token)):
        for ch in alphabet:
            if ch != token[i]:
                assert verify_token(token[:i] + ch + token[i + 1 :], KEY) is None
    assert verify_token(token[:-1], KEY) is None
    assert verify_token(token + "A", KEY) is None


@pytest.mark.parametrize(
    "token", ["", "!", "a b", "====", "A" * 10_000, "é", None, 42, b"bytes", "abc=", "abcd\n", "\x00" * 20]
)
def test_it_returns_none_for_garbage_instead_of_raising(token):
    assert verify_token(token, KEY) is None


def test_it_refuses_a_non_canonical_base64_spelling_of_a_valid_token():
    token = sign_token(b"x", KEY)  # 13 bytes: the last character carries unused bits
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    variant = token[:-1] + alphabet[alphabet.index(token[-1]) + 1]
    assert base64.urlsafe_b64decode(variant + "=" * (-len(variant) % 4)) == raw
    assert verify_token(variant, KEY) is None


def test_it_refuses_short_keys():
    with pytest.raises(ValueError):
        sign_token(b"x", b"short")
    with pytest.raises(ValueError):
        verify_token("abc", b"")
    with pytest.raises(TypeError):
        sign_token(b"x", "a string key of enough length")


def test_it_derives_distinct_keys_per_purpose():
    a = derive_key("a long installation secret", "tracking")
    assert len(a) == 32
    assert a == derive_key(b"a long installation secret", "tracking")
    assert a != derive_key("a long installation secret", "unsubscribe")


@given(payload=st.binary(max_size=64), purpose=st.text(max_size=10))
@settings(max_examples=200, deadline=None)
def test_it_round_trips_any_payload(payload, purpose):
    assert verify_token(sign_token(payload, KEY, purpose=purpose), KEY, purpose=purpose) == payload


# ---------------------------------------------------------------------------------------- tracking ids


def test_it_carries_only_an_email_id_and_link_index_in_tracking_tokens():
    token = make_tracking_token(KEY, KIND_CLICK, 123_456_789, 7)
    assert len(token) <= 26
    assert read_tracking_token(KEY, token, KIND_CLICK) == (123_456_789, 7)
    assert b"http" not in base64.urlsafe_b64decode(token + "==")
    for email_id, index in [(0, 0), (1, 0), (127, 128), (2**63 - 1, 2**31 - 1)]:
        assert read_tracking_token(
            KEY, make_tracking_token(KEY, KIND_CLICK, email_id, index), KIND_CLICK
        ) == (
            email_id,
            index,
        )


def test_the_many_message_token_maker_makes_the_same_signed_tokens():
    from postdesk.outbound.tracking import _TRACKING_PURPOSE, TrackingTokens, _uvarint

    tokens = TrackingTokens(KEY)
    for kind, email_id, index in [(KIND_CLICK, 42, 3), (KIND_OPEN, 2**40, 0), (KIND_UNSUBSCRIBE, 7, 0)]:
        token = tokens.make(kind, email_id, index)
        assert token == make_tracking_token(KEY, kind, email_id, index)
        payload = kind.encode() + _uvarint(email_id) + _uvarint(index)
        assert token == sign_token(payload, KEY, purpose=_TRACKING_PURPOSE)
        assert read_tracking_token(KEY, token, kind) == (email_id, index)


def test_it_does_not_accept_a_token_of_one_kind_as_another():
    open_token = make_tracking_token(KEY, KIND_OPEN, 5)
    assert read_tracking_token(KEY, open_token, KIND_OPEN) == (5, 0)
    assert read_tracking_token(KEY, open_token, KIND_CLICK) is None
    assert read_tracking_token(KEY, open_token, KIND_UNSUBSCRIBE) is None
    assert read_tracking_token(OTHER_KEY, open_token, KIND_OPEN) is None
    assert read_tracking_token(KEY, sign_token(b"c\x05\x00", KEY), KIND_CLICK) is None  # no tracking purpose


def test_it_refuses_out_of_range_ids_and_unknown_kinds():
    for args in [("c", -1, 0), ("c", 2**63, 0), ("c", 1, -1), ("c", 1, 2**31), ("x", 1, 0)]:
        with pytest.raises(ValueError):
            make_tracking_token(KEY, *args)


# -------------------------------------------------------------------------------------------------- links


class Hrefs(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.hrefs = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.hrefs.append(dict(attrs).get("href"))


def hrefs(html: str) -> list:
    parser = Hrefs()
    parser.feed(html)
    parser.close()
    return parser.hrefs


def tracked(i: int, target: str) -> str:
    return f"https://pd.example.com/t/{i}?x=1&y=\"'"


def test_it_rewrites_http_links_and_returns_their_targets_in_order():
    html = (
        "<p><a href=\"https://example.com/a?x=1&amp;y=2\">a</a> <A HREF='http://example.org'>b</A> "
        '<a class=btn href=https://example.net/z>c</a> <a title=">" href="https://example.com/a?x=1&amp;y=2">d</a></p>'
    )
    out, targets = rewrite_links(html, tracked)
    assert targets == [
        "https://example.com/a?x=1&y=2",
        "http://example.org",
        "https://example.net/z",
        "https://example.com/a?x=1&y=2",
    ]
    assert hrefs(out) == [tracked(i, "") for i in range(4)]
    assert 'class=btn href="https://pd.example.com/t/2?x=1&amp;y=&quot;&#x27;"' in out
    assert out.count("<p>") == 1 and out.endswith("d</a></p>")


@pytest.mark.parametrize(
    "link",
    [
        '<a href="mailto:help@example.com">m</a>',
        '<a href="tel:+331234">t</a>',
        '<a href="#top">t</a>',
        '<a href="/relative">r</a>',
        '<a href="//example.com/protocol-relative">p</a>',
        '<a href="javascript:alert(1)">j</a>',
        '<a href=" JaVaScRiPt:alert(1)">j</a>',
        '<a href="{{ unsubscribe_url }}">u</a>',
        '<a href="https://example.com/u/{{ token }}">u</a>',
        '<a href="https://exa mple.com/">s</a>',
        '<a href="http://evil.example\\@good.example/">b</a>',
        '<a name="anchor">n</a>',
        "<a href>empty</a>",
        '<!-- <a href="https://commented.example/">c</a> -->',
        '<script>document.write("<a href=\\"https://in-script.example/\\">")</script>',
        '<abbr href="https://not-a-link.example/">x</abbr>',
        '<area href="https://area.example/">',
    ],
)
def test_it_leaves_other_links_placeholders_and_non_links_alone(link):
    out, targets = rewrite_links(link, tracked)
    assert out == link
    assert targets == []


def test_it_reads_targets_as_a_browser_would():
    out, targets = rewrite_links('<a href="&#10; https://example.com/p&#9;ath ">x</a>', tracked)
    assert targets == ["https://example.com/path"]


def test_it_rewrites_only_the_first_href_of_a_tag():
    out, targets = rewrite_links('<a href="https://one.example/" href="https://two.example/">x</a>', tracked)
    assert targets == ["https://one.example/"]
    assert 'href="https://two.example/"' in out


link_html = st.lists(
    st.sampled_from(
        [
            '<a href="https://example.com/{}">x</a>',
            "<a href='http://example.org/?q={}&amp;r=1'>y</a>",
            "<a href=https://example.net/{}>z</a>",
            '<a href="mailto:a{}@example.com">m</a>',
            '<a href="{{{{ u{} }}}}">u</a>',
            "<p title='<a href=\"https://no.example/{}\">'>text</p>",
            "<!-- {} -->",
            "plain text {} & more",
        ]
    ),
    max_size=12,
).map(lambda parts: "".join(p.format(i) for i, p in enumerate(parts)))


@given(html=link_html)
@settings(max_examples=200, deadline=None)
def test_it_rewrites_exactly_the_hrefs_a_browser_parser_sees_as_http_links(html):
    out, targets = rewrite_links(html, tracked)
    before, after = hrefs(html), hrefs(out)
    assert len(before) == len(after)
    http = [h for h in before if h and h.startswith(("http://", "https://"))]
    assert targets == http
    expected = iter(tracked(i, t) for i, t in enumerate(targets))
    assert after == [next(expected) if h and h.startswith(("http://", "https://")) else h for h in before]


def test_it_checks_redirect_targets():
    for good in ["https://example.com/", "http://example.com/a?b=c#d", "HTTPS://EXAMPLE.COM/x"]:
        assert is_safe_target(good)
    for bad in ["javascript:alert(1)", "//example.com/", "/path", "https://", "https:///x", "https://ex ample.com/",
                "https://example.com/\r\nSet-Cookie: x", "http://a\\@b/", "data:text/html,x", "", None, "ftp://x.org/"]:  # fmt: skip
        assert not is_safe_target(bad)


def test_it_makes_an_escaped_open_pixel_and_inserts_it_before_the_body_ends():
    pixel = open_pixel_html("https://pd.example.com/o/abc?x=1&y=2")
    assert pixel.startswith('<img src="https://pd.example.com/o/abc?x=1&amp;y=2" width="1" height="1" alt=""')
    for bad in ["javascript:alert(1)", 'https://pd.example.com/o/"onerror="x', "/o/relative"]:
        with pytest.raises(ValueError):
            open_pixel_html(bad)
    page = "<html><body><p>x</p></BODY></html>"
    assert insert_open_pixel(page, "https://p.example/o") == page.replace(
        "</BODY>", open_pixel_html("https://p.example/o") + "</BODY>"
    )
    assert insert_open_pixel("<p>x</p>", "https://p.example/o").endswith("/>")


def test_it_wires_tracking_into_a_prepared_template_without_putting_targets_in_urls():
    html = '<p><a href="https://shop.example.com/new?a=1&amp;b=2">New</a> <a href="{{ unsub }}">Unsubscribe</a></p>'
    html, targets = rewrite_links(html, lambda i, target: f"https://pd.example.com/t/{{{{ _link_{i} }}}}")
    html = insert_open_pixel(html, "https://pd.example.com/o/{{ _open }}")
    pm = prepare_template(
        from_address="n@example.com", subject_template="s", text_template="t", html_template=html
    )
    fields = {
        "_link_0": make_tracking_token(KEY, KIND_CLICK, 99, 0),
        "_open": make_tracking_token(KEY, KIND_OPEN, 99),
        "unsub": "https://pd.example.com/u/" + make_tracking_token(KEY, KIND_UNSUBSCRIBE, 99),
    }
    raw = pm.render("r@example.org", fields, "<m@x.y>")
    assert b"shop.example.com" not in raw
    assert targets == ["https://shop.example.com/new?a=1&b=2"]
    import email
    import email.policy

    body = email.message_from_bytes(raw, policy=email.policy.default).get_body(("html",)).get_content()
    link = hrefs(body)[0]
    assert read_tracking_token(KEY, link.rsplit("/", 1)[1], KIND_CLICK) == (99, 0)


# ---------------------------------------------------------------------------------------------- RFC 8058


def test_it_makes_one_click_list_unsubscribe_headers():
    assert list_unsubscribe_headers("https://pd.example.com/u/tok", "unsub@example.com") == {
        "List-Unsubscribe": "<https://pd.example.com/u/tok>, <mailto:unsub@example.com?subject=unsubscribe>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert list_unsubscribe_headers("https://pd.example.com/u/tok") == {
        "List-Unsubscribe": "<https://pd.example.com/u/tok>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert list_unsubscribe_headers(None, "mailto:u@example.com?subject=stop") == {
        "List-Unsubscribe": "<mailto:u@example.com?subject=stop>"
    }


@pytest.mark.parametrize(
    "https_url,mailto,error",
    [
        ("http://pd.example.com/u/tok", None, HeaderInjectionError),
        ("https://pd.example.com/u/tok\r\nBcc: evil@example.com", None, HeaderInjectionError),
        ("https://pd.example.com/u/t>ok", None, HeaderInjectionError),
        ("https://pd.example.com/u/a,b", None, HeaderInjectionError),
        ("javascript:alert(1)", None, HeaderInjectionError),
        ("https://pd.example.com/u/tok", "u@example.com\r\nBcc: evil@example.com", HeaderInjectionError),
        ("https://pd.example.com/u/tok", "not an address", HeaderInjectionError),
        (
            "https://pd.example.com/u/tok",
            "mailto:u@example.com>, <https://evil.example/",
            HeaderInjectionError,
        ),
        (None, None, ValueError),
    ],
)
def test_it_refuses_unsafe_list_unsubscribe_uris(https_url, mailto, error):
    with pytest.raises(error):
        list_unsubscribe_headers(https_url, mailto)
