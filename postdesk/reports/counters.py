"""Pre-aggregated statistics: the 27 counters of the tutorial's user-based statistics (agent, disposition and mass
email), one row per project, user, UTC day of the email and kind. Each event kind is counted once per email
(Email.event_flags), so repeated opens or clicks count one."""

from __future__ import annotations

from django.db import connection
from django.db.models import F

from postdesk.emails.models import EVENT_BITS, Email, EventKind, Kind
from postdesk.reports.models import DailyEmailStats

KIND_BUCKET = {Kind.AGENT_REPLY: "agent", Kind.DISPOSITION: "disposition", Kind.MASS: "mass"}
EVENT_COUNTER = {
    EventKind.DELIVERED: "delivered",
    EventKind.DROPPED: "dropped",
    EventKind.BOUNCED: "bounced",
    EventKind.OPENED: "opened",
    EventKind.CLICKED: "link_clicks",
    EventKind.SPAM: "marked_as_spam",
    EventKind.UNSUBSCRIBED: "unsubscribed",
}
COUNTERS = (
    "sent",
    "response",
    "bounced",
    "link_clicks",
    "marked_as_spam",
    "delivered",
    "dropped",
    "opened",
    "unsubscribed",
)


def _bump(email: Email, counters: dict[str, int]) -> None:
    bucket = KIND_BUCKET.get(email.kind)
    if bucket is None or email.sent_by_id is None:
        return
    bump_bulk(email.project_id, email.sent_by_id, email.date.date(), bucket, counters)


def bump_bulk(project_id: int, user_id: int | None, day, bucket: str, counters: dict[str, int]) -> None:
    """Add to one statistics row (project, user, day, kind), creating it when missing (one upsert)."""
    counters = {k: v for k, v in counters.items() if v}
    if not counters or user_id is None:
        return
    table = connection.ops.quote_name(DailyEmailStats._meta.db_table)
    sets = ", ".join(f"{c} = {table}.{c} + EXCLUDED.{c}" for c in counters)
    values = {c: counters.get(c, 0) for c in COUNTERS}
    all_cols = ", ".join(COUNTERS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (project_id, user_id, day, kind, {all_cols}) "
            f"VALUES (%s, %s, %s, %s, {', '.join(['%s'] * len(COUNTERS))}) "
            f"ON CONFLICT (project_id, user_id, day, kind) DO UPDATE SET {sets}",
            [project_id, user_id, day.isoformat(), bucket, *(values[c] for c in COUNTERS)],
        )


def count_sent(email: Email) -> None:
    counters = {"sent": 1}
    if email.kind == Kind.AGENT_REPLY and email.reply_to_email_id:
        counters["response"] = 1
    _bump(email, counters)


def count_event(email: Email, kind: str) -> bool:
    """Count the event once per email; True when it was counted now (first of its kind)."""
    bit = EVENT_BITS.get(kind)
    if bit is None:
        return False
    # Set the bit atomically; only the call that flips it counts.
    flipped = (
        Email.objects.filter(pk=email.pk)
        .annotate(seen=F("event_flags").bitand(bit))
        .filter(seen=0)
        .update(event_flags=F("event_flags") + bit)
    )
    if not flipped:
        return False
    email.event_flags |= bit
    counter = EVENT_COUNTER.get(kind)
    if counter:
        _bump(email, {counter: 1})
    return True


def count_events(kind: str, emails: list[Email]) -> list[int]:
    """count_event for many emails at once: one UPDATE flips the bit where it was not set yet (returning those
    ids), then one statistics update per (project, agent, day, kind of email). Returns the ids counted now."""
    from django.db import connection

    bit = EVENT_BITS.get(kind)
    if bit is None or not emails:
        return []
    by_id = {e.pk: e for e in emails}
    table = connection.ops.quote_name(Email._meta.db_table)
    flipped: list[int] = []
    ids = list(by_id)
    with connection.cursor() as cursor:
        for start in range(0, len(ids), 900):
            chunk = ids[start : start + 900]
            marks = ", ".join(["%s"] * len(chunk))
            cursor.execute(
                f"UPDATE {table} SET event_flags = event_flags + %s "
                f"WHERE id IN ({marks}) AND (event_flags & %s) = 0 RETURNING id",
                [bit, *chunk, bit],
            )
            flipped += [row[0] for row in cursor.fetchall()]
    counter = EVENT_COUNTER.get(kind)
    groups: dict[tuple, int] = {}
    for email_id in flipped:
        email = by_id[email_id]
        email.event_flags |= bit
        bucket = KIND_BUCKET.get(email.kind)
        if counter and bucket and email.sent_by_id is not None:
            key = (email.project_id, email.sent_by_id, email.date.date(), bucket)
            groups[key] = groups.get(key, 0) + 1
    for (project_id, user_id, day, bucket), n in groups.items():
        bump_bulk(project_id, user_id, day, bucket, {counter: n})
    return flipped
