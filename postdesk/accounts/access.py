"""Who may use which area: every page and API route states its role through these helpers."""

from __future__ import annotations

import functools

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied

from postdesk.core.errors import Forbidden


def supervisor_required(view):
    """A page for supervisors only: agents get 403."""

    @login_required
    @functools.wraps(view)
    def inner(request, *args, **kwargs):
        if not request.user.is_supervisor:
            raise PermissionDenied("supervisors only")
        return view(request, *args, **kwargs)

    inner.postdesk_role = "supervisor"
    return inner


def agent_required(view):
    """A page for any logged-in user (agents and supervisors)."""
    inner = login_required(view)
    inner.postdesk_role = "agent"
    return inner


def require_supervisor(user) -> None:
    """For API handlers: raise 403 unless the user is a supervisor."""
    if not (user and user.is_authenticated and user.is_supervisor):
        raise Forbidden("supervisors only")
