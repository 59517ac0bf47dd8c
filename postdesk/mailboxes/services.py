"""The only place that changes email accounts (forwarding, SMTP, mass)."""

from __future__ import annotations

import re

from postdesk.core.errors import Conflict, Invalid
from postdesk.core.services import audit
from postdesk.mailboxes.models import Auth, EmailAccount, Protocol, Security

ADDRESS_RE = re.compile(r"^[^@\s<>\",;]{1,64}@[A-Za-z0-9.-]{1,253}$")
DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")
HOST_RE = re.compile(r"^[A-Za-z0-9.:\[\]-]{1,255}$")
NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,100}$")

COMMON = ("address", "display_name", "enabled", "is_default")
SMTP_FIELDS = (
    "host",
    "port",
    "security",
    "auth",
    "username",
    "password",
    "tls_verify",
    "ca_file",
    "max_per_second",
    "oauth_provider",
    "oauth_client_id",
    "oauth_client_secret",
    "oauth_authorize_url",
    "oauth_token_url",
    "oauth_scope",
)
SECRET_FIELDS = {"password", "oauth_client_secret"}
DEFAULT_PORTS = {Security.STARTTLS: 587, Security.TLS: 465, Security.NONE: 25}


def normalise_address(address: str) -> str:
    local, _, domain = (address or "").strip().rpartition("@")
    return f"{local}@{domain.lower()}"


def check_account(values: dict, prefix: str = "") -> dict:
    """Validate one account's fields (as given by the UI, the API or `apply`); returns the normalised values."""
    p = f"{prefix}." if prefix else ""
    out = dict(values)
    name = str(out.get("name") or "")
    if not NAME_RE.match(name):
        raise Invalid("an account name is 1-100 letters, digits, '.', '_' or '-'", field=f"{p}name")
    protocol = out.get("protocol")
    if protocol not in Protocol.values:
        raise Invalid(f"unknown protocol {protocol!r}: forwarding, smtp or mass", field=f"{p}protocol")
    address = str(out.get("address") or "").strip()
    if not ADDRESS_RE.match(address) or "\r" in address or "\n" in address:
        raise Invalid(f"not an email address: {address!r}", field=f"{p}address")
    out["address"] = normalise_address(address)
    display = str(out.get("display_name") or "")
    if any(c in display for c in "\r\n\0"):
        raise Invalid("must not contain line breaks", field=f"{p}display_name")
    if protocol == Protocol.SMTP:
        host = str(out.get("host") or "").strip()
        if not host or not HOST_RE.match(host):
            raise Invalid("an SMTP account needs the mail server's host name", field=f"{p}host")
        security = out.get("security") or Security.STARTTLS
        if security not in Security.values:
            raise Invalid(f"unknown security {security!r}: starttls, tls or none", field=f"{p}security")
        out["security"] = security
        auth = out.get("auth") or Auth.LOGIN
        if auth not in Auth.values:
            raise Invalid(f"unknown auth {auth!r}: login, plain, xoauth2 or none", field=f"{p}auth")
        out["auth"] = auth
        port = out.get("port") or DEFAULT_PORTS[security]
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise Invalid("port must be a number from 1 to 65535", field=f"{p}port")
        out["port"] = port
        if auth in (Auth.LOGIN, Auth.PLAIN) and not out.get("username"):
            raise Invalid(f"{auth.upper()} authentication needs a username", field=f"{p}username")
        if auth == Auth.XOAUTH2 and not (out.get("oauth_token_url") and out.get("oauth_client_id")):
            raise Invalid("XOAUTH2 needs oauth_client_id and oauth_token_url", field=f"{p}oauth_token_url")
    elif protocol == Protocol.MASS:
        domain = str(out.get("domain") or "").strip().lower()
        if not DOMAIN_RE.match(domain):
            raise Invalid(f"not a domain name: {domain!r}", field=f"{p}domain")
        if not out["address"].endswith("@" + domain) and not out["address"].endswith("." + domain):
            raise Invalid(f"the address must be on the domain {domain}", field=f"{p}address")
        out["domain"] = domain
    return out


def upsert_account(
    values: dict, *, project=None, by=None, prefix: str = ""
) -> tuple[EmailAccount, list[str]]:
    """Create or update an account from validated values. `project` is the forwarding account's project."""
    values = check_account(values, prefix)
    p = f"{prefix}." if prefix else ""
    protocol = values["protocol"]
    if protocol == Protocol.FORWARDING:
        if project is None:
            raise Invalid("a forwarding account needs the project its mail is routed to", field=f"{p}project")
        clash = EmailAccount.objects.filter(
            protocol=Protocol.FORWARDING, address__iexact=values["address"]
        ).exclude(name=values["name"])
        if clash.exists():
            raise Conflict(
                f"{values['address']} is already the address of another forwarding account",
                field=f"{p}address",
            )
    fields = {k: values[k] for k in COMMON if k in values}
    if protocol == Protocol.SMTP:
        fields.update({k: values[k] for k in SMTP_FIELDS if k in values})
    if protocol == Protocol.MASS:
        fields["domain"] = values["domain"]
    if protocol == Protocol.FORWARDING:
        fields["project"] = project
    account = EmailAccount.objects.filter(name=values["name"]).first()
    if account is not None and account.protocol != protocol:
        raise Conflict(
            f"account {values['name']!r} exists with protocol {account.protocol}", field=f"{p}protocol"
        )
    created = account is None
    if created:
        account = EmailAccount(name=values["name"], protocol=protocol)
    changed = []
    for k, v in fields.items():
        if v is None:
            continue
        if getattr(account, k) != v:
            changed.append(k)
            setattr(account, k, v)
    if not created and not changed:
        return account, []
    if fields.get("is_default") and protocol == Protocol.SMTP:
        EmailAccount.objects.filter(protocol=Protocol.SMTP, is_default=True).exclude(
            name=account.name
        ).update(is_default=False)
    if protocol == Protocol.MASS and not account.dkim_private_key:
        from postdesk.mailboxes.dns import ensure_dkim_key

        ensure_dkim_key(account)
    account.save()
    shown = [k if k not in SECRET_FIELDS else f"{k} (secret)" for k in changed]
    audit(
        "account.create" if created else "account.update",
        actor=by,
        project=account.project,
        obj=account,
        after={k: ("***" if k in SECRET_FIELDS else getattr(account, k)) for k in changed if k != "project"},
    )
    if created:
        return account, [f"+ account {account.name} ({protocol}, {account.address})"]
    return account, [f"~ account {account.name}: {', '.join(shown)}"]


def default_sender_for(project):
    """The project's default sender account: the enabled default among its sender accounts, else the first."""
    accounts = [
        link.account for link in project.sender_links.select_related("account") if link.account.enabled
    ]
    for account in accounts:
        if account.is_default:
            return account
    return accounts[0] if accounts else None


def find_forwarding_account(address: str) -> EmailAccount | None:
    return (
        EmailAccount.objects.select_related("project")
        .filter(protocol=Protocol.FORWARDING, enabled=True, address__iexact=normalise_address(address))
        .first()
    )
