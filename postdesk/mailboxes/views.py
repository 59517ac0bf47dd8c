"""Global settings > Email accounts (supervisors): the list, a new forwarding, SMTP or mass-email account, editing,
enabling and disabling, and the SMTP connection test. Every write goes through mailboxes.services in one transaction."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from postdesk.accounts.access import supervisor_required
from postdesk.core.errors import Conflict, DomainError, Invalid
from postdesk.mailboxes import services
from postdesk.mailboxes.forms import AccountForm
from postdesk.mailboxes.models import EmailAccount, Protocol


def _account(name: str) -> EmailAccount:
    account = EmailAccount.objects.select_related("project").filter(name=name).first()
    if account is None:
        raise Http404("no such account")
    return account


def _project_for(form: AccountForm):
    from postdesk.projects.models import Project

    key = form.project_key()
    if not key:
        return None
    project = Project.objects.filter(key=key).first()
    if project is None:
        raise Invalid(f"no project with key {key!r}", field="project")
    return project


def _context(**extra) -> dict:
    return {
        "section": "accounts",
        "smtp_hostname": settings.CONFIG.smtp_hostname,
        "public_url": settings.CONFIG.public_url.rstrip("/"),
        **extra,
    }


@supervisor_required
def accounts_list(request):
    accounts = EmailAccount.objects.select_related("project")
    return render(request, "mailboxes/accounts_list.html", _context(accounts=accounts))


@supervisor_required
def account_create(request, protocol: str):
    if protocol not in Protocol.values:
        raise Http404("no such protocol")
    status = 200
    if request.method == "POST":
        form = AccountForm(request.POST, protocol=protocol)
        form.is_valid()
        try:
            with transaction.atomic():
                values = form.values()
                if EmailAccount.objects.filter(name=values["name"]).exists():
                    raise Conflict(f"an account named {values['name']!r} exists", field="name")
                project = _project_for(form) if protocol == Protocol.FORWARDING else None
                account, _ = services.upsert_account(values, project=project, by=request.user)
        except DomainError as exc:
            form.add_domain_error(exc)
            status = exc.status
        else:
            messages.success(request, f"Account {account.name} created.")
            return redirect("account-edit", name=account.name)
    else:
        form = AccountForm(initial=AccountForm.initial_for(None, protocol), protocol=protocol)
    return render(
        request,
        "mailboxes/account_form.html",
        _context(form=form, protocol=protocol, protocol_label=Protocol(protocol).label, account=None),
        status=status,
    )


@supervisor_required
def account_edit(request, name: str):
    account = _account(name)
    status = 200
    if request.method == "POST":
        form = AccountForm(request.POST, protocol=account.protocol, account=account)
        form.is_valid()
        try:
            with transaction.atomic():
                # a forwarding account's project can be changed, not removed (empty: unchanged)
                project = _project_for(form) if account.protocol == Protocol.FORWARDING else None
                services.update_account(account, form.values(), project=project, by=request.user)
        except DomainError as exc:
            form.add_domain_error(exc)
            status = exc.status
            account = _account(name)
        else:
            messages.success(request, f"Account {account.name} saved.")
            return redirect("account-edit", name=account.name)
    else:
        form = AccountForm(
            initial=AccountForm.initial_for(account, account.protocol),
            protocol=account.protocol,
            account=account,
        )
    return render(
        request,
        "mailboxes/account_form.html",
        _context(
            form=form,
            protocol=account.protocol,
            protocol_label=account.get_protocol_display(),
            account=account,
        ),
        status=status,
    )


@supervisor_required
@require_POST
def account_enable(request, name: str):
    """Enable or disable an account (`enabled` = 1 or 0): a disabled forwarding account refuses mail."""
    account = _account(name)
    enabled = request.POST.get("enabled") == "1"
    with transaction.atomic():
        services.set_account_enabled(account, enabled, by=request.user)
    messages.success(request, f"Account {account.name} {'enabled' if enabled else 'disabled'}.")
    target = request.POST.get("next")
    if target == "edit":
        return redirect("account-edit", name=account.name)
    return redirect("accounts-list")


@supervisor_required
@require_POST
def account_test(request, name: str):
    """Connect to the SMTP server with the saved settings and report its answer (htmx: a fragment)."""
    from postdesk.outbound.services import test_connection

    account = _account(name)
    if account.protocol != Protocol.SMTP:
        ok, message = False, "Only SMTP accounts have a connection to test."
    else:
        ok, message = test_connection(account)
    if request.htmx:
        return render(request, "mailboxes/_test_result.html", {"ok": ok, "message": message})
    (messages.success if ok else messages.error)(request, f"Connection test: {message}")
    return redirect("account-edit", name=account.name)


account_test.__test__ = False  # a view, not a pytest test
