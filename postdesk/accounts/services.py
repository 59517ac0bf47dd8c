"""The only place that changes users, API tokens and agent states."""

from __future__ import annotations

from django.db import transaction

from postdesk.accounts.models import AgentState, AgentStateChange, ApiToken, Role, User
from postdesk.core import clock
from postdesk.core.crypto import new_token, token_digest
from postdesk.core.errors import Invalid, NotFound
from postdesk.core.services import audit


def upsert_user(*, username: str, password: str | None, role: str, by=None) -> list[str]:
    """Create the user or bring it to the given role and password. Returns what changed (empty: nothing)."""
    if role not in Role.values:
        raise Invalid(f"unknown role {role!r}: agent or supervisor", field="role")
    user = User.objects.filter(username=username).first()
    if user is None:
        user = User(username=username, role=role)
        user.set_password(password) if password else user.set_unusable_password()
        user.save()
        audit("user.create", actor=by, obj=user, after={"username": username, "role": role})
        return [f"+ user {username} ({role})"]
    changed = []
    if user.role != role:
        audit("user.update", actor=by, obj=user, before={"role": user.role}, after={"role": role})
        changed.append(f"~ user {username}: role {user.role} -> {role}")
        user.role = role
    if password and not user.check_password(password):
        user.set_password(password)
        audit("user.password", actor=by, obj=user)
        changed.append(f"~ user {username}: password changed")
    if changed:
        user.save()
    return changed


def create_token(user: User, *, name: str = "", by=None) -> str:
    """A new API token for the user; the token itself is returned once and never stored."""
    token = new_token()
    ApiToken.objects.create(user=user, name=name, prefix=token[:10], digest=token_digest(token))
    audit("token.create", actor=by or user, obj=user, after={"prefix": token[:10], "name": name})
    return token


def create_token_for(username: str, name: str = "") -> str:
    user = User.objects.filter(username=username, is_active=True).first()
    if user is None:
        raise NotFound(f"no active user named {username!r}", field="username")
    return create_token(user, name=name)


def set_state(user: User, state: str, *, project=None, email=None) -> None:
    """Change the user's state (Email status while working on an email); a no-op when unchanged."""
    if state not in AgentState.values:
        raise Invalid(f"unknown state {state!r}", field="state")
    moment = clock.now()
    with transaction.atomic():
        current = User.objects.select_for_update().only("id", "state").get(pk=user.pk)
        if current.state == state and state != AgentState.EMAIL:
            return
        AgentStateChange.objects.filter(user=user, ended_at__isnull=True).update(ended_at=moment)
        AgentStateChange.objects.create(user=user, state=state, at=moment, project=project, email=email)
        User.objects.filter(pk=user.pk).update(state=state, state_since=moment)
    user.state, user.state_since = state, moment
