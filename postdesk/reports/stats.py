"""User-based statistics (tutorial section 5): per agent and period, for agent, disposition and mass email:
sent, bounced, link clicks, marked as spam, delivered, dropped, opened, unsubscribed (+ response for agent email).
Read from the pre-aggregated daily rows (reports.counters), so a month is a few hundred rows whatever the volume."""

from __future__ import annotations

import datetime as dt

from django.db.models import Sum

from postdesk.reports.counters import COUNTERS
from postdesk.reports.models import DailyEmailStats

KINDS = ("agent", "disposition", "mass")
OUTPUT_NAME = {"agent": "agent_email", "disposition": "disposition", "mass": "mass"}


def per_agent(project, date_from: dt.date, date_to: dt.date) -> list[dict]:
    rows = (
        DailyEmailStats.objects.filter(project=project, day__gte=date_from, day__lte=date_to)
        .values("user__username", "kind")
        .annotate(**{c: Sum(c) for c in COUNTERS})
    )
    agents: dict[str, dict] = {}
    for row in rows:
        name = row["user__username"] or "(deleted user)"
        entry = agents.setdefault(name, {"agent": name, **{OUTPUT_NAME[k]: _empty(k) for k in KINDS}})
        entry[OUTPUT_NAME[row["kind"]]] = {
            c: row[c] or 0 for c in COUNTERS if c != "response" or row["kind"] == "agent"
        }
    return sorted(agents.values(), key=lambda e: e["agent"])


def _empty(kind: str) -> dict:
    return {c: 0 for c in COUNTERS if c != "response" or kind == "agent"}


def totals(entries: list[dict]) -> dict:
    out = {OUTPUT_NAME[k]: _empty(k) for k in KINDS}
    for entry in entries:
        for name in out:
            for counter, value in entry[name].items():
                out[name][counter] += value
    return out


def daily(project, date_from: dt.date, date_to: dt.date) -> list[dict]:
    """One entry per UTC day of the period (days without email included, as zeros), with the counters of each kind:
    {"day": date, "agent_email": {...}, "disposition": {...}, "mass": {...}}."""
    rows = (
        DailyEmailStats.objects.filter(project=project, day__gte=date_from, day__lte=date_to)
        .values("day", "kind")
        .annotate(**{c: Sum(c) for c in COUNTERS})
    )
    days: dict[dt.date, dict] = {}
    day = date_from
    while day <= date_to:
        days[day] = {"day": day, **{OUTPUT_NAME[k]: _empty(k) for k in KINDS}}
        day += dt.timedelta(days=1)
    for row in rows:
        entry = days.get(row["day"])
        if entry is not None and row["kind"] in OUTPUT_NAME:
            target = entry[OUTPUT_NAME[row["kind"]]]
            for counter in target:
                target[counter] += row[counter] or 0
    return list(days.values())


def all_kinds(entry: dict, counter: str) -> int:
    """A counter summed over agent, disposition and mass email (an entry of per_agent, daily or totals)."""
    return sum(entry[OUTPUT_NAME[k]].get(counter, 0) for k in KINDS)
