"""Mass-email sending domains: the per-domain DKIM key pair and the three DNS records customers publish (TXT SPF,
TXT DKIM at <selector>._domainkey, and a CNAME for the return-path/tracking host), and their verification with
dnspython. An account whose records are not all verified cannot send mass email."""

from __future__ import annotations

import dns.exception
import dns.resolver
from django.conf import settings

from postdesk.core import clock
from postdesk.core.services import audit

CNAME_LABEL = "pdmail"  # <label>.<domain>: the customer's return-path and tracking host


def ensure_dkim_key(account) -> None:
    from postdesk.outbound.dkim import generate_dkim_key

    private_pem, record = generate_dkim_key()
    account.dkim_private_key = private_pem.decode() if isinstance(private_pem, bytes) else private_pem
    account.dkim_public_key = record.split("p=", 1)[1].strip().rstrip(";")
    account.dkim_selector = account.dkim_selector or f"pd{clock.now():%Y%m}"


def dkim_record(account) -> str:
    return f"v=DKIM1; k=rsa; p={account.dkim_public_key}"


def spf_record() -> str:
    return f"v=spf1 {settings.CONFIG.mass_spf} ~all"


def records(account) -> list[dict]:
    """The three records to publish, each with name, record_type and value."""
    domain = account.domain
    return [
        {"name": domain, "record_type": "TXT", "value": spf_record()},
        {"name": f"{account.dkim_selector}._domainkey.{domain}", "record_type": "TXT", "value": dkim_record(account)},
        {"name": f"{CNAME_LABEL}.{domain}", "record_type": "CNAME",
         "value": settings.CONFIG.mass_cname_target.rstrip(".") + "."},
    ]


def resolver() -> dns.resolver.Resolver:
    if settings.CONFIG.dns_server:
        host, _, port = settings.CONFIG.dns_server.rpartition(":")
        res = dns.resolver.Resolver(configure=False)
        res.nameservers = [host or "127.0.0.1"]
        res.port = int(port or 53)
    else:
        res = dns.resolver.Resolver()
    res.lifetime = 5.0
    res.timeout = 2.0
    return res


def _txt_values(res, name: str) -> list[str]:
    answer = res.resolve(name, "TXT")
    return [b"".join(rdata.strings).decode("utf-8", "replace") for rdata in answer]


def _normalise_txt(value: str) -> str:
    return " ".join(value.replace('"', "").split()).rstrip(";").lower()


def check_record(res, record: dict) -> tuple[bool, str]:
    """(verified, what was found) for one record."""
    try:
        if record["record_type"] == "CNAME":
            answer = res.resolve(record["name"], "CNAME")
            found = [str(rdata.target).rstrip(".").lower() for rdata in answer]
            return record["value"].rstrip(".").lower() in found, ", ".join(found)
        found = _txt_values(res, record["name"])
        wanted = _normalise_txt(record["value"])
        if record["value"].startswith("v=spf1"):
            spf = [v for v in found if v.lower().startswith("v=spf1")]
            ok = len(spf) == 1 and settings.CONFIG.mass_spf.lower() in spf[0].lower()
            return ok, " | ".join(spf) or "no SPF record"
        return any(_normalise_txt(v) == wanted for v in found), " | ".join(found)[:500]
    except dns.resolver.NXDOMAIN:
        return False, "no such name"
    except dns.resolver.NoAnswer:
        return False, f"no {record['record_type']} record"
    except (dns.exception.DNSException, OSError) as exc:
        return False, f"lookup failed: {type(exc).__name__}"


def verify(account, by=None) -> list[dict]:
    """Look every record up; the account is validated when all three are right."""
    res = resolver()
    results = []
    for record in records(account):
        ok, found = check_record(res, record)
        results.append({**record, "verified": ok, "found": found})
    account.dns_status = {"checked_at": clock.now().isoformat(), "records": results}
    account.verified_at = clock.now() if all(r["verified"] for r in results) else None
    account.save(update_fields=["dns_status", "verified_at"])
    audit("account.dns.verify", actor=by, obj=account, after={"verified": account.verified_at is not None})
    return results
