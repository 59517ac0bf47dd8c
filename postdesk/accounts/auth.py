"""API authentication: `Authorization: Bearer <token>`; only the token's SHA-256 digest is stored. Browser sessions
are accepted too (with CSRF) so the UI can call the API."""

from __future__ import annotations

import datetime as dt

from ninja.security import HttpBearer, SessionAuth

from postdesk.accounts.models import ApiToken
from postdesk.core import clock
from postdesk.core.crypto import token_digest


class TokenAuth(HttpBearer):
    def authenticate(self, request, token):
        if not token or len(token) > 200:
            return None
        row = (
            ApiToken.objects.select_related("user")
            .filter(digest=token_digest(token), revoked_at__isnull=True, user__is_active=True)
            .first()
        )
        if row is None:
            return None
        moment = clock.now()
        if row.last_used_at is None or moment - row.last_used_at > dt.timedelta(minutes=5):
            ApiToken.objects.filter(pk=row.pk).update(last_used_at=moment)
        request.user = row.user
        return row.user


class BrowserSession(SessionAuth):
    """The logged-in browser session (CSRF enforced by django-ninja for unsafe methods)."""


api_auth = [TokenAuth(), BrowserSession()]
