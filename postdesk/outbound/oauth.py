"""OAuth 2.0 for SMTP accounts (Microsoft 365, Google, or any provider with configurable endpoints): the
authorization-code flow, token refresh before expiry, and saving a rotated refresh token every time the provider
returns one (the bug that silently kills channels after 90 days elsewhere)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import threading
import urllib.error
import urllib.parse
import urllib.request

from django.core import signing
from django.db import transaction

from postdesk.core import clock
from postdesk.core.services import audit
from postdesk.mailboxes.models import EmailAccount

log = logging.getLogger(__name__)
REFRESH_MARGIN = dt.timedelta(seconds=120)
PROVIDERS = {
    "microsoft": {
        "authorize": "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
        "token": "https://login.microsoftonline.com/common/oauth2/v2.0/token",
        "scope": "offline_access https://outlook.office.com/SMTP.Send",
    },
    "google": {
        "authorize": "https://accounts.google.com/o/oauth2/v2/auth",
        "token": "https://oauth2.googleapis.com/token",
        "scope": "https://mail.google.com/",
    },
}
_locks: dict[int, threading.Lock] = {}
_locks_guard = threading.Lock()


class OAuthError(Exception):
    pass


def endpoints(account: EmailAccount) -> tuple[str, str, str]:
    preset = PROVIDERS.get(account.oauth_provider, {})
    return (
        account.oauth_authorize_url or preset.get("authorize", ""),
        account.oauth_token_url or preset.get("token", ""),
        account.oauth_scope or preset.get("scope", ""),
    )


def authorization_url(account: EmailAccount, redirect_uri: str) -> str:
    authorize, _, scope = endpoints(account)
    if not authorize:
        raise OAuthError("no authorization endpoint configured")
    state = signing.dumps({"account": account.pk, "nonce": secrets.token_urlsafe(8)}, salt="oauth-state")
    query = {
        "response_type": "code",
        "client_id": account.oauth_client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state,
        "access_type": "offline",
        "prompt": "consent",
    }
    return f"{authorize}?{urllib.parse.urlencode(query)}"


def account_from_state(state: str) -> EmailAccount:
    try:
        data = signing.loads(state, salt="oauth-state", max_age=3600)
    except signing.BadSignature:
        raise OAuthError("the authorization answer is not ours (bad state)")
    return EmailAccount.objects.get(pk=data["account"])


def _post(url: str, form: dict) -> dict:
    if not url.startswith(("https://", "http://")):
        raise OAuthError(f"token endpoint must be an http(s) URL, not {url[:40]!r}")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url, data=urllib.parse.urlencode(form).encode(), headers={"Accept": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310 - configured https endpoint
            return json.loads(response.read().decode() or "{}")
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read().decode() or "{}")
        except ValueError:
            body = {}
        reason = body.get("error_description") or body.get("error") or exc.reason
        raise OAuthError(f"token endpoint answered {exc.code}: {reason}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise OAuthError(f"token endpoint unreachable: {exc}")


def _save_tokens(account: EmailAccount, data: dict) -> None:
    if not data.get("access_token"):
        raise OAuthError("the token endpoint returned no access token")
    account.oauth_access_token = data["access_token"]
    if data.get("refresh_token"):  # rotated: keep the new one, the old one may already be dead
        account.oauth_refresh_token = data["refresh_token"]
    expires_in = int(data.get("expires_in") or 3600)
    account.oauth_expires_at = clock.now() + dt.timedelta(seconds=expires_in)
    account.last_error, account.last_error_at = "", None
    account.save(
        update_fields=[
            "oauth_access_token",
            "oauth_refresh_token",
            "oauth_expires_at",
            "last_error",
            "last_error_at",
        ]
    )


def exchange_code(account: EmailAccount, code: str, redirect_uri: str, by=None) -> None:
    _, token_url, _ = endpoints(account)
    data = _post(
        token_url,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": account.oauth_client_id,
            "client_secret": account.oauth_client_secret,
        },
    )
    with transaction.atomic():
        _save_tokens(account, data)
        audit("account.oauth.connect", actor=by, obj=account)


def _lock_for(account_id: int) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(account_id, threading.Lock())


def access_token(account: EmailAccount, *, force: bool = False) -> str:
    """A valid access token, refreshed when it expires within two minutes. A failed refresh marks the account with a
    clear error (shown to supervisors) and raises OAuthError; other accounts are unaffected."""
    with _lock_for(account.pk):
        account.refresh_from_db(fields=["oauth_access_token", "oauth_refresh_token", "oauth_expires_at"])
        fresh = account.oauth_expires_at and account.oauth_expires_at - REFRESH_MARGIN > clock.now()
        if account.oauth_access_token and fresh and not force:
            return account.oauth_access_token
        if not account.oauth_refresh_token:
            mark_error(account, "OAuth: not connected (no refresh token): connect the account again")
            raise OAuthError("no refresh token")
        _, token_url, scope = endpoints(account)
        try:
            data = _post(
                token_url,
                {
                    "grant_type": "refresh_token",
                    "refresh_token": account.oauth_refresh_token,
                    "client_id": account.oauth_client_id,
                    "client_secret": account.oauth_client_secret,
                    "scope": scope,
                },
            )
            _save_tokens(account, data)
        except OAuthError as exc:
            mark_error(account, f"OAuth token refresh failed: {exc}. Connect the account again.")
            raise
        return account.oauth_access_token


def mark_error(account: EmailAccount, message: str) -> None:
    account.last_error, account.last_error_at = message[:2000], clock.now()
    EmailAccount.objects.filter(pk=account.pk).update(
        last_error=account.last_error, last_error_at=account.last_error_at
    )
    log.warning("account %s: %s", account.name, message)
