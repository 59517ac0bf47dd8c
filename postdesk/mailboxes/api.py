"""Email accounts in the API (supervisors only): list, create, change, enable or disable, test an SMTP connection.
Secrets (passwords, OAuth client secrets and tokens, DKIM private keys) are write-only: never returned."""

from __future__ import annotations

from django.db import transaction
from ninja import Router, Schema, Status
from pydantic import StrictBool, StrictInt

from postdesk.accounts.access import require_supervisor
from postdesk.core.errors import Conflict, Invalid
from postdesk.mailboxes import services
from postdesk.mailboxes.models import EmailAccount, Protocol
from postdesk.projects.api import In, supervisor_auth

router = Router(tags=["accounts"], auth=supervisor_auth)


class AccountOut(Schema):
    name: str
    protocol: str
    address: str
    display_name: str
    enabled: bool
    default: bool
    project: str | None  # forwarding: the project the mail is routed to
    forward_to: str | None  # forwarding: the address to forward mail to
    host: str | None
    port: int | None
    security: str | None
    auth: str | None
    username: str | None
    has_password: bool
    tls_verify: bool | None
    ca_file: str | None
    max_per_second: int | None
    oauth_provider: str | None
    oauth_client_id: str | None
    has_oauth_client_secret: bool
    oauth_authorize_url: str | None
    oauth_token_url: str | None
    oauth_scope: str | None
    oauth_connected: bool
    domain: str | None
    verified: bool
    last_error: str
    last_error_at: str | None


class AccountFields(In):
    address: str | None = None
    project: str | None = None
    display_name: str | None = None
    default: StrictBool | None = None
    enabled: StrictBool | None = None
    host: str | None = None
    port: StrictInt | None = None
    security: str | None = None
    auth: str | None = None
    username: str | None = None
    password: str | None = None
    tls_verify: StrictBool | None = None
    ca_file: str | None = None
    max_per_second: StrictInt | None = None
    oauth_provider: str | None = None
    oauth_client_id: str | None = None
    oauth_client_secret: str | None = None
    oauth_authorize_url: str | None = None
    oauth_token_url: str | None = None
    oauth_scope: str | None = None
    domain: str | None = None


class AccountIn(AccountFields):
    name: str
    protocol: str
    address: str


class TestResult(Schema):
    ok: bool
    message: str


def account_out(account: EmailAccount) -> dict:
    smtp = account.protocol == Protocol.SMTP
    forwarding = account.protocol == Protocol.FORWARDING

    def s(value):
        return value if smtp else None

    return {
        "name": account.name,
        "protocol": account.protocol,
        "address": account.address,
        "display_name": account.display_name,
        "enabled": account.enabled,
        "default": account.is_default,
        "project": account.project.key if forwarding and account.project_id else None,
        "forward_to": account.address if forwarding else None,
        "host": s(account.host),
        "port": s(account.port),
        "security": s(account.security),
        "auth": s(account.auth),
        "username": s(account.username),
        "has_password": bool(account.password),
        "tls_verify": s(account.tls_verify),
        "ca_file": s(account.ca_file),
        "max_per_second": s(account.max_per_second),
        "oauth_provider": s(account.oauth_provider),
        "oauth_client_id": s(account.oauth_client_id),
        "has_oauth_client_secret": bool(account.oauth_client_secret),
        "oauth_authorize_url": s(account.oauth_authorize_url),
        "oauth_token_url": s(account.oauth_token_url),
        "oauth_scope": s(account.oauth_scope),
        "oauth_connected": bool(account.oauth_refresh_token),
        "domain": account.domain if account.protocol == Protocol.MASS else None,
        "verified": account.verified_at is not None,
        "last_error": account.last_error,
        "last_error_at": account.last_error_at.isoformat() if account.last_error_at else None,
    }


def _values(payload: AccountFields) -> tuple[dict, object]:
    """The service's values from a request body (`default` is the account's is_default) and the project."""
    from postdesk.projects.models import Project

    values = payload.model_dump(exclude_unset=True)
    project = None
    key = values.pop("project", None)
    if key is not None:
        project = Project.objects.filter(key=str(key)).first()
        if project is None:
            raise Invalid(f"no project with key {key!r}", field="project")
    if "default" in values:
        values["is_default"] = values.pop("default")
    return values, project


@router.get("/accounts", response=list[AccountOut], summary="Every email account (forwarding, SMTP, mass)")
def list_accounts(request):
    require_supervisor(request.auth)
    return [account_out(a) for a in EmailAccount.objects.select_related("project")]


@router.post("/accounts", response={201: AccountOut}, summary="Create an email account")
def create_account(request, payload: AccountIn):
    require_supervisor(request.auth)
    values, project = _values(payload)
    with transaction.atomic():
        if EmailAccount.objects.filter(name=values["name"]).exists():
            raise Conflict(f"an account named {values['name']!r} exists", field="name")
        account, _ = services.upsert_account(values, project=project, by=request.auth)
    return Status(201, account_out(account))


@router.get("/accounts/{name}", response=AccountOut, summary="One email account (without its secrets)")
def read_account(request, name: str):
    require_supervisor(request.auth)
    return account_out(services.get_account(name))


@router.patch(
    "/accounts/{name}",
    response=AccountOut,
    summary="Change an account: enable or disable it, its server, its secrets (empty secrets are kept)",
)
def patch_account(request, name: str, payload: AccountFields):
    require_supervisor(request.auth)
    values, project = _values(payload)
    with transaction.atomic():
        account = services.get_account(name)
        enabled = values.pop("enabled", None)
        if values or project is not None:
            services.update_account(account, values, project=project, by=request.auth)
        if enabled is not None:
            services.set_account_enabled(services.get_account(name), enabled, by=request.auth)
    return account_out(services.get_account(name))


@router.post(
    "/accounts/{name}/test",
    response=TestResult,
    summary="Connect to an SMTP account's server, secure and authenticate; report the server's answer",
)
def test_account(request, name: str):
    from postdesk.outbound.services import test_connection

    require_supervisor(request.auth)
    account = services.get_account(name)
    if account.protocol != Protocol.SMTP:
        raise Invalid("only SMTP accounts have a connection to test", field="protocol")
    ok, message = test_connection(account)
    return {"ok": ok, "message": message}


test_account.__test__ = False  # an API handler, not a pytest test


class DnsRecordOut(Schema):
    name: str
    record_type: str
    value: str
    verified: bool
    found: str | None = None


def _mass_account(name: str) -> EmailAccount:
    account = services.get_account(name)
    if account.protocol != Protocol.MASS:
        raise Invalid(f"{name} is not a mass-email account", field="name")
    return account


@router.get("/accounts/{name}/dns", response=list[DnsRecordOut],
            summary="A mass account's DNS records (2 TXT, 1 CNAME) and whether each was verified")
def dns_records(request, name: str):
    from postdesk.mailboxes import dns

    require_supervisor(request.auth)
    account = _mass_account(name)
    checked = {(r["name"], r["record_type"]): r for r in (account.dns_status or {}).get("records", [])}
    out = []
    for record in dns.records(account):
        last = checked.get((record["name"], record["record_type"]), {})
        out.append({**record, "verified": bool(last.get("verified")) and last.get("value") == record["value"],
                    "found": last.get("found")})
    return out


@router.post("/accounts/{name}/dns/verify", response=list[DnsRecordOut],
             summary="Look the records up now; the account is validated when all three are right")
def verify_dns(request, name: str):
    from postdesk.mailboxes import dns

    require_supervisor(request.auth)
    account = _mass_account(name)
    with transaction.atomic():
        return dns.verify(account, by=request.auth)
