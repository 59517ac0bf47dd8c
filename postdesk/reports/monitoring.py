"""Real-time monitoring (tutorial section 5): each user's state (Email status while working on an email), how many
users are in Email status, and today's statistics: emails sent per user and in total, and the time spent in Email
status. "Today" is the current UTC day up to now.

A snapshot costs a handful of indexed queries whatever the history: the project's members, today's pre-aggregated
statistics rows (reports.DailyEmailStats by project and day), and the Email status intervals that overlap today: those
that began today (by state and time) and, per user, the last one that began before today (by user and time)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.db.models import OuterRef, Q, Subquery, Sum

from postdesk.accounts.models import AgentState, AgentStateChange, User
from postdesk.core import clock
from postdesk.reports.models import DailyEmailStats


def day_bounds(moment: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(moment.astimezone(dt.UTC).date(), dt.time.min, tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def email_status_seconds(user_ids: list[int], start: dt.datetime, until: dt.datetime) -> dict[int, float]:
    """Seconds each user spent in Email status between `start` and `until` (an open interval lasts until `until`)."""
    if not user_ids:
        return {}
    before = (
        User.objects.filter(pk__in=user_ids)
        .annotate(
            previous=Subquery(
                AgentStateChange.objects.filter(user=OuterRef("pk"), at__lt=start)
                .order_by("-at", "-id")
                .values("id")[:1]
            )
        )
        .values_list("previous", flat=True)
    )
    previous = [pk for pk in before if pk is not None]
    intervals = AgentStateChange.objects.filter(state=AgentState.EMAIL).filter(
        Q(pk__in=previous) | Q(user_id__in=user_ids, at__gte=start, at__lt=until)
    )
    seconds: dict[int, float] = defaultdict(float)
    for user_id, began, ended in intervals.values_list("user_id", "at", "ended_at"):
        low, high = max(began, start), min(ended or until, until)
        if high > low:
            seconds[user_id] += (high - low).total_seconds()
    return dict(seconds)


def snapshot(project, now: dt.datetime | None = None) -> dict:
    """The monitoring page and GET /api/v1/monitoring: the project's users with their state and today's figures."""
    now = now or clock.now()
    start, _ = day_bounds(now)
    sent_rows = (
        DailyEmailStats.objects.filter(project=project, day=start.date())
        .values("user_id")
        .annotate(sent=Sum("sent"))
        .values_list("user_id", "sent")
    )
    sent = {user_id: count or 0 for user_id, count in sent_rows}
    # the project's members, and whoever sent email in it today
    users = list(
        User.objects.filter(Q(projectmember__project=project) | Q(pk__in=[u for u in sent if u is not None]))
        .distinct()
        .order_by("username")
        .only("id", "username", "first_name", "last_name", "role", "is_superuser", "state", "state_since")
    )
    email_seconds = email_status_seconds([u.pk for u in users], start, now)
    rows, by_state = [], {state: 0 for state in AgentState.values}
    for user in users:
        by_state[user.state] = by_state.get(user.state, 0) + 1
        rows.append(
            {
                "user": user,
                "username": user.username,
                "name": user.display_name,
                "state": user.state,
                "state_label": AgentState(user.state).label
                if user.state in AgentState.values
                else user.state,
                "state_since": user.state_since,
                "state_seconds": max(0, int((now - user.state_since).total_seconds()))
                if user.state_since
                else None,
                "emails_sent_today": sent.get(user.pk, 0),
                "email_status_seconds_today": int(email_seconds.get(user.pk, 0)),
            }
        )
    return {
        "project": project,
        "at": now,
        "users": rows,
        "states": by_state,
        "users_in_email_status": by_state.get(AgentState.EMAIL, 0),
        "emails_sent_today": sum(sent.values()),
        "email_status_seconds_today": int(sum(email_seconds.values())),
    }
