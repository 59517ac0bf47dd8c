"""Cross-domain helpers every service uses: the audit trail."""

from __future__ import annotations

from postdesk.core.models import AuditEvent
from postdesk.core.sqlbulk import insert_objects


def audit(action: str, *, actor=None, project=None, obj=None, before=None, after=None) -> AuditEvent:
    """Record one change. Call it inside the transaction that makes the change."""
    event = AuditEvent(
        action=action,
        actor=actor if getattr(actor, "pk", None) else None,
        actor_name=getattr(actor, "username", None) or "system",
        project=project,
        object_type=obj._meta.model_name if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        before=before,
        after=after,
    )
    insert_objects(AuditEvent, [event])  # plain SQL: written by nearly every action, on the paths agents wait for
    return event


def changes(before: dict, after: dict) -> tuple[dict, dict]:
    """Only the keys whose values differ, as (before, after)."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}
