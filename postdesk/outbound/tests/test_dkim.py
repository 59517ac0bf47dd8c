"""dkim: keys, relaxed/relaxed rsa-sha256 signatures that dkimpy (an independent verifier) accepts."""

from __future__ import annotations

import base64
import functools
import re
from datetime import UTC, datetime

import dkim as dkimpy
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postdesk.outbound.compose import build_message, prepare_template
from postdesk.outbound.dkim import (
    DkimSigner,
    dns_txt_strings,
    generate_dkim_key,
    public_record,
    relaxed_body,
    relaxed_header,
)
from postdesk.outbound.tracking import list_unsubscribe_headers

DOMAIN = "example.com"
SELECTOR = "pd2024"
# A throwaway 512-bit key (cryptography no longer generates keys this small): too weak to be accepted.
RSA_512_PEM = b"""-----BEGIN PRIVATE KEY-----
MIIBVAIBADANBgkqhkiG9w0BAQEFAASCAT4wggE6AgEAAkEAsaNv1wGEQQiO3spz
VwB7NGzQrZpZf1OmeR8ka2pJ/byaKiXmBax84XGQp+UxIz8tSnEWhR5ED9wt+e4F
1b62swIDAQABAkBipLiRc7UmjAMScufz0z+XkCmdjc3PJ/uU3RdTUtW9wZVFkTwY
es0kECBn0ap/bHM20Y7MZJtx4c5/0gsKs4RhAiEA6Bo/HXmm02fmv97DDULjmjuJ
+lsaFHlLGfsltk47MaMCIQDD7aBxS5amJ9DNwuS22APvuCvUux/d+PfRljwN6HFX
sQIhAOFjQ3EDBk56sigWUQEauFy4foeAWjYRhy2Gpht/opnTAiApSgN8vLQzscJU
ClVOnvk9ZG+ANisCCTyYY3OmbqysEQIgeqEm6lcjFouQOGyuyfS3Uh3G++hQG8Tl
n/isLy4rtd8=
-----END PRIVATE KEY-----
"""
PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@functools.cache
def key() -> tuple[bytes, str]:
    return generate_dkim_key()


@functools.cache
def signer() -> DkimSigner:
    return DkimSigner(key()[0], DOMAIN, SELECTOR)


def dnsfunc(name, timeout=5):
    if name != f"{SELECTOR}._domainkey.{DOMAIN}.".encode():
        return None
    return key()[1].encode("ascii")


def verifies(message: bytes) -> bool:
    return dkimpy.verify(message, dnsfunc=dnsfunc)


def signature_tags(signed: bytes) -> dict[str, str]:
    header = re.match(rb"DKIM-Signature:(.*?)\r\n(?=\S)", signed, re.S).group(1)
    value = re.sub(r"\s+", "", header.decode("ascii"))
    return dict(tag.split("=", 1) for tag in value.split(";") if tag)


def build(**overrides) -> bytes:
    kwargs = dict(
        from_address="support@example.com",
        from_name="Support",
        to=["customer@example.org"],
        subject="Re: your order",
        text="Hello,\nyour order has shipped.\n",
        message_id="<abc.123@example.com>",
        date=datetime(2024, 3, 5, 14, 7, 9, tzinfo=UTC),
    )
    kwargs.update(overrides)
    return build_message(**kwargs)


# ---------------------------------------------------------------------------------------------------- keys


def test_it_generates_an_rsa_2048_key_and_its_dns_record():
    pem, record = key()
    private = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(private, rsa.RSAPrivateKey) and private.key_size == 2048
    assert record.startswith("v=DKIM1; k=rsa; p=")
    der = base64.b64decode(record.split("p=", 1)[1])
    assert serialization.load_der_public_key(der).public_numbers() == private.public_key().public_numbers()
    assert public_record(pem) == record
    with pytest.raises(ValueError):
        generate_dkim_key(1024)


def test_it_splits_the_record_into_255_octet_dns_strings():
    record = key()[1]
    strings = dns_txt_strings(record)
    assert len(strings) == 2 and all(len(s) <= 255 for s in strings) and "".join(strings) == record


def test_it_refuses_keys_that_are_not_rsa_or_too_small_and_bad_selectors():
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ValueError):
        DkimSigner(ec_pem, DOMAIN, SELECTOR)
    with pytest.raises(ValueError, match="bits"):
        DkimSigner(RSA_512_PEM, DOMAIN, SELECTOR)
    for selector in ["", "a b", "a;b", "a\r\nb", "-a", "a..b"]:
        with pytest.raises(ValueError):
            DkimSigner(key()[0], DOMAIN, selector)
    with pytest.raises(ValueError):
        DkimSigner(key()[0], DOMAIN, SELECTOR, signed_headers=("subject", "to"))


def test_it_loads_an_encrypted_pem_with_its_password():
    private = serialization.load_pem_private_key(key()[0], password=None)
    encrypted = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    assert verifies(DkimSigner(encrypted, DOMAIN, SELECTOR, password=b"pw").sign(build()))


def test_it_signs_an_idn_domain_as_punycode():
    signed = DkimSigner(key()[0], "bücher.de", SELECTOR).sign(build(from_address="a@bücher.de"))
    assert signature_tags(signed)["d"] == "xn--bcher-kva.de"


# ------------------------------------------------------------------------------------ canonicalisation


def test_it_canonicalises_the_rfc6376_example_relaxed():
    # RFC 6376 3.4.6
    assert relaxed_header(b"A", b" X") + relaxed_header(b"B ", b" Y\t\r\n\tZ  ") == b"a:X\r\nb:Y Z\r\n"
    assert relaxed_body(b" C \r\nD \t E\r\n\r\n\r\n") == b" C\r\nD E\r\n"


@pytest.mark.parametrize(
    "body,expected",
    [
        (b"", b""),
        (b"\r\n", b""),
        (b"\r\n\r\n", b""),
        (b" \t\r\n \r\n", b""),
        (b"a", b"a\r\n"),
        (b"a  \t", b"a\r\n"),
        (b"a\r\n\r\nb\r\n\r\n", b"a\r\n\r\nb\r\n"),
        (b"\ta\t\tb \r\n", b" a b\r\n"),
    ],
)
def test_it_canonicalises_bodies_relaxed(body, expected):
    assert relaxed_body(body) == expected


# ----------------------------------------------------------------------------------------------- signing


def test_it_prepends_a_relaxed_rsa_sha256_signature_with_t_and_without_l():
    message = build()
    signed = signer().sign(message, timestamp=1700000000)
    assert signed.startswith(
        b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=pd2024;"
    )
    assert signed.endswith(message)
    tags = signature_tags(signed)
    assert tags["t"] == "1700000000" and "l" not in tags and "x" not in tags
    assert tags["h"].split(":")[:2] == ["from", "from"]  # From is over-signed
    assert all(len(line) <= 78 for line in signed[: len(signed) - len(message)].split(b"\r\n"))
    assert verifies(signed)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"subject": "Ihre Bestellung für Café — 注文の確認 " * 6},
        {
            "from_name": "Zoë Ågren-Støre",
            "to": [(f"Kunde {i} Müller", f"k{i}@example.org") for i in range(12)],
        },
        {"text": "x" * 5000 + "\n" + "y " * 3000},
        {"text": "trailing spaces   \nand tabs\t\t\n  \n"},
        {"text": ""},
        {"text": "\n\n\n"},
        {"text": "body with trailing blank lines\n\n\n\n"},
        {"text": "line\n.\n..\n.x\nFrom me\n"},
        {"text": "mixed\r\nline\rendings\n"},
        {"html": "<p>" + "long html line é " * 200 + "</p>"},
        {"html": "", "text": ""},
        {"attachments": [("Relevé très long " * 5 + ".pdf", "application/pdf", bytes(range(256)) * 20)]},
        {"in_reply_to": "<p@x.org>", "references": [f"<r{i}@x.org>" for i in range(30)]},
        {
            "headers": {
                **list_unsubscribe_headers("https://pd.example.com/u/" + "t" * 80, "unsub@example.com"),
                "Auto-Submitted": "auto-generated",
                "X-Postdesk-Id": "42",
            }
        },
    ],
)
def test_it_signs_built_messages_so_that_dkimpy_verifies_them(overrides):
    assert verifies(signer().sign(build(**overrides)))


def test_it_signs_rendered_mass_mail_so_that_dkimpy_verifies_every_recipient():
    pm = prepare_template(
        from_address="news@example.com",
        from_name="Exämple Shop",
        subject_template="{{ name }}, nouveautés de la semaine",
        text_template="Bonjour {{ name }},\n\n"
        + "Une ligne assez longue pour être coupée en quoted-printable. " * 3
        + "\n\n\n",
        html_template='<p>Bonjour {{ name }}</p>\n<p><a href="{{ unsub }}">Se désabonner</a></p>   \n',
        headers={"Precedence": "bulk"},
    )
    for i, name in enumerate(["Zoë", "Jean-François", "山田 太郎", "O'Brien", "x" * 200, "", "trailing  "]):
        unsub = f"https://pd.example.com/u/tok{i}"
        raw = pm.render(
            (name, f"r{i}@example.org"),
            {"name": name, "unsub": unsub},
            f"<m{i}@example.com>",
            list_unsubscribe_headers(unsub, "unsub@example.com"),
        )
        signed = signer().sign(raw)
        assert verifies(signed), name
        assert {"list-unsubscribe", "list-unsubscribe-post"} <= set(signature_tags(signed)["h"].split(":"))


@pytest.mark.parametrize(
    "message",
    [
        b"From: a@example.com\r\nSubject:   spaced   out  \r\n\tand folded\t \r\n  twice\r\nTo: b@x.org\r\n\r\nbody\r\n",
        b"From:a@example.com\r\nSUBJECT:no space\r\nTo:  b@x.org\r\n\r\n  leading and trailing  \r\n\r\n",
        b"From: a@example.com\r\nTo: b@x.org\r\n\r\n",
        b"From: a@example.com\r\nTo: b@x.org\r\n",
        b"From: a@example.com\r\nTo: b@x.org\r\n\r\nno final newline",
        b"From: a@example.com\r\nTo: b@x.org\r\n\r\nends in spaces   ",
        b"From: a@example.com\nTo: b@x.org\nSubject: LF only\n\nbody\n\n",
        b"From: a@example.com\r\nTo: b@x.org\r\nSubject: one\r\nSubject: two\r\n\r\nx\r\n",
    ],
)
def test_it_signs_hand_written_messages_with_awkward_whitespace(message):
    signed = signer().sign(message)
    assert signed.count(b"\n") == signed.count(b"\r\n") and signed.endswith(b"\r\n")
    assert verifies(signed)


def test_it_refuses_messages_without_a_from_or_without_headers():
    for message in [
        b"To: b@x.org\r\n\r\nbody\r\n",
        b"\r\nbody\r\n",
        b"not a header\r\n\r\n",
        b" folded\r\n\r\n",
    ]:
        with pytest.raises(ValueError):
            signer().sign(message)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda m: m.replace(b"your order has shipped", b"your order has been lost"),
        lambda m: m.replace(b"Subject: Re: your order", b"Subject: Re: your refund"),
        lambda m: m.replace(b"MIME-Version", b"From: evil@example.net\r\nMIME-Version"),
        lambda m: m.replace(b"MIME-Version", b"Subject: urgent\r\nMIME-Version"),
        lambda m: m.replace(b"MIME-Version", b"Reply-To: evil@example.net\r\nMIME-Version"),
        lambda m: m.replace(b"MIME-Version", b"List-Unsubscribe: <https://evil.example/>\r\nMIME-Version"),
        lambda m: m.replace(b"MIME-Version", b"Cc: evil@example.net\r\nMIME-Version"),
        lambda m: m + b"appended line\r\n",
    ],
)
def test_it_produces_signatures_that_fail_once_the_message_is_tampered_with(tamper):
    signed = signer().sign(build())
    tampered = tamper(signed)
    assert tampered != signed
    assert not verifies(tampered)


def test_it_tolerates_what_relays_do_to_whitespace_under_relaxed_canonicalisation():
    signed = signer().sign(build(text="a  b\nc\n"))
    head, body = signed.split(b"\r\n\r\n", 1)
    relayed = head.replace(b"Subject: Re: your order", b"Subject:  Re:\r\n\tyour order ") + b"\r\n\r\n"
    relayed += body.replace(b"a  b", b"a \t b") + b"\r\n\r\n"
    assert verifies(relayed)


def test_it_signs_only_the_listed_headers_that_are_present_plus_oversigned_names():
    s = DkimSigner(
        key()[0],
        DOMAIN,
        SELECTOR,
        signed_headers=("from", "subject", "x-custom"),
        oversigned_headers=("from",),
    )
    signed = s.sign(b"From: a@example.com\r\nX-Custom: 1\r\nX-Custom: 2\r\nTo: b@x.org\r\n\r\nbody\r\n")
    assert signature_tags(signed)["h"] == "from:from:x-custom:x-custom"
    assert verifies(signed)


alphabet = st.sampled_from(["a", "é", " ", "\t", "\r\n", "\n", "\r", ".", "=", "x" * 90, "€", "  \r\n"])


@given(
    text=st.lists(alphabet, max_size=60).map("".join),
    subject=st.text(max_size=120).filter(lambda s: s.isprintable()),
)
@PROPERTY
def test_it_signs_any_built_message_verifiably(text, subject):
    assert verifies(signer().sign(build(text=text, subject=subject, html=text or None)))


@given(body=st.lists(alphabet, max_size=60).map("".join).map(str.encode))
@PROPERTY
def test_it_signs_any_raw_body_verifiably(body):
    assert verifies(signer().sign(b"From: a@example.com\r\nSubject: s\r\n\r\n" + body))
