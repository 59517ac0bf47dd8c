"""The only place that changes email accounts (forwarding, SMTP, mass)."""

from __future__ import annotations

import re

from postdesk.core.errors import Conflict, Invalid, NotFound
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
NULLABLE_FIELDS = {"max_per_second"}  # None is a value (no limit), not "leave as it is"
TEXT_LIMITS = {
    f.name: f.max_length
    for f in EmailAccount._meta.get_fields()
    if getattr(f, "max_length", None) and f.get_internal_type() in ("CharField", "EmailField", "URLField")
}
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
    for key, value in out.items():
        limit = TEXT_LIMITS.get(key)
        if limit and isinstance(value, str) and len(value) > limit:
            raise Invalid(f"must be at most {limit} characters", field=f"{p}{key}")
    for key in ("enabled", "is_default", "tls_verify"):
        if key in out and out[key] is not None and not isinstance(out[key], bool):
            raise Invalid("must be true or false", field=f"{p}{key}")
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
        rate = out.get("max_per_second")
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int) or rate < 1):
            raise Invalid(
                "must be empty (no limit) or a whole number of at least 1", field=f"{p}max_per_second"
            )
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
    if project is not None and protocol != Protocol.FORWARDING:
        raise Invalid("only forwarding accounts route to a project", field=f"{p}project")
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
    changed, before = [], {}
    for k, v in fields.items():
        if v is None and k not in NULLABLE_FIELDS:
            continue
        if getattr(account, k) != v:
            changed.append(k)
            before[k] = _shown(k, getattr(account, k))
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
        before=None if created else before,
        after={k: _shown(k, getattr(account, k)) for k in changed},
    )
    if created:
        return account, [f"+ account {account.name} ({protocol}, {account.address})"]
    return account, [f"~ account {account.name}: {', '.join(shown)}"]


def _shown(key: str, value):
    """A value as the audit log keeps it: secrets masked, the project by its key."""
    if key in SECRET_FIELDS:
        return "***" if value else ""
    if key == "project":
        return value.key if value is not None else None
    return value


def default_sender_for(project, links=None):
    """The project's default sender account: the one the project marked as its default, else the enabled account
    whose own Default setting is on, else the first of its sender accounts. (`links`: the project's enabled
    SenderAccount rows with their accounts, when the caller has them already.)"""
    if links is None:
        links = [link for link in project.sender_links.select_related("account") if link.account.enabled]
    for link in links:
        if link.is_default:
            return link.account
    for link in links:
        if link.account.is_default:
            return link.account
    return links[0].account if links else None


def find_forwarding_account(address: str) -> EmailAccount | None:
    return (
        EmailAccount.objects.select_related("project")
        .filter(protocol=Protocol.FORWARDING, enabled=True, address__iexact=normalise_address(address))
        .first()
    )


def get_account(name: str) -> EmailAccount:
    account = EmailAccount.objects.select_related("project").filter(name=name).first()
    if account is None:
        raise NotFound(f"no account named {name!r}", field="account")
    return account


def account_named(name: str, field: str) -> EmailAccount:
    """The account with this name, for a field that refers to one (an unknown name is invalid input)."""
    account = EmailAccount.objects.filter(name=str(name)).first()
    if account is None:
        raise Invalid(f"no account named {name!r}", field=field)
    return account


def accounts_named(names: list[str], field: str = "sender_accounts") -> list[EmailAccount]:
    """The accounts with these names, in order; an unknown name is refused naming its position."""
    found = {a.name: a for a in EmailAccount.objects.filter(name__in=[str(n) for n in names])}
    out = []
    for i, name in enumerate(names):
        if name not in found:
            raise Invalid(f"no account named {name!r}", field=f"{field}.{i}")
        out.append(found[name])
    return out


def account_values(account: EmailAccount) -> dict:
    """An account's settings as `check_account` takes them, without its secrets."""
    values = {"name": account.name, "protocol": account.protocol}
    for key in COMMON:
        values[key] = getattr(account, key)
    if account.protocol == Protocol.SMTP:
        for key in SMTP_FIELDS:
            if key not in SECRET_FIELDS:
                values[key] = getattr(account, key)
    if account.protocol == Protocol.MASS:
        values["domain"] = account.domain
    return values


def update_account(account: EmailAccount, changes: dict, *, project=None, by=None) -> list[str]:
    """Change some of an account's settings: the result is validated whole. Secrets left empty are kept; the name
    and protocol never change. `project` is the forwarding account's project (None: unchanged)."""
    for key in ("name", "protocol"):
        if key in changes and changes[key] != getattr(account, key):
            raise Invalid(f"an account's {key} cannot be changed", field=key)
    changes = {k: v for k, v in changes.items() if not (k in SECRET_FIELDS and not v)}
    if account.protocol == Protocol.FORWARDING and project is None:
        project = account.project
    values = {**account_values(account), **changes}
    _, lines = upsert_account(values, project=project, by=by)
    return lines


def set_account_enabled(account: EmailAccount, enabled: bool, by=None) -> list[str]:
    """Enable or disable an account (a disabled forwarding account refuses mail, a disabled sender is not offered)."""
    if account.enabled == enabled:
        return []
    account.enabled = enabled
    account.save(update_fields=["enabled"])
    audit(
        "account.enable" if enabled else "account.disable",
        actor=by,
        project=account.project,
        obj=account,
        before={"enabled": not enabled},
        after={"enabled": enabled},
    )
    return [f"~ account {account.name}: {'enabled' if enabled else 'disabled'}"]


def set_default_account(account: EmailAccount, by=None) -> list[str]:
    """Make this SMTP account the default sender account (there is one default)."""
    if account.protocol != Protocol.SMTP:
        raise Invalid(
            "only an SMTP account can be the default sender account", field="default_sender_account"
        )
    if account.is_default:
        return []
    previous = list(
        EmailAccount.objects.filter(protocol=Protocol.SMTP, is_default=True).values_list("name", flat=True)
    )
    EmailAccount.objects.filter(protocol=Protocol.SMTP, is_default=True).update(is_default=False)
    account.is_default = True
    account.save(update_fields=["is_default"])
    audit(
        "account.default",
        actor=by,
        obj=account,
        before={"default": previous[0] if previous else None},
        after={"default": account.name},
    )
    return [f"~ account {account.name}: default sender account"]
