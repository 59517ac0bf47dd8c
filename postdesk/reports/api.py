"""Reports in the API: user-based statistics (per agent, per day) and real-time monitoring. Supervisors only."""

from __future__ import annotations

import datetime as dt

from ninja import Query, Router, Schema

from postdesk.accounts.access import require_supervisor
from postdesk.core import clock
from postdesk.core.errors import Invalid
from postdesk.projects.access import get_project_for
from postdesk.reports import monitoring, stats

router = Router(tags=["reports"])


class StatsQuery(Schema):
    project: str
    date_from: dt.date | None = None
    date_to: dt.date | None = None


class Counters(Schema):
    sent: int
    bounced: int
    link_clicks: int
    marked_as_spam: int
    delivered: int
    dropped: int
    opened: int
    unsubscribed: int


class AgentCounters(Counters):
    response: int


class AgentStats(Schema):
    agent: str
    agent_email: AgentCounters
    disposition: Counters
    mass: Counters


class StatsOut(Schema):
    project: str
    date_from: dt.date
    date_to: dt.date
    agents: list[AgentStats]


@router.get("/stats/agents", response=StatsOut, summary="User-based statistics per agent for a period")
def agent_stats(request, query: Query[StatsQuery]):
    require_supervisor(request.auth)
    project = get_project_for(request.auth, query.project)
    date_from, date_to = _period(query)
    return {
        "project": project.key,
        "date_from": date_from,
        "date_to": date_to,
        "agents": stats.per_agent(project, date_from, date_to),
    }


def _period(query: StatsQuery) -> tuple[dt.date, dt.date]:
    date_to = query.date_to or clock.today()
    date_from = query.date_from or date_to.replace(day=1)
    if date_from > date_to:
        raise Invalid("date_from is after date_to", field="date_from")
    if (date_to - date_from).days > 3660:
        raise Invalid("at most ten years at once", field="date_from")
    return date_from, date_to


class DayStats(Schema):
    day: dt.date
    agent_email: AgentCounters
    disposition: Counters
    mass: Counters


class DailyOut(Schema):
    project: str
    date_from: dt.date
    date_to: dt.date
    days: list[DayStats]


@router.get("/stats/daily", response=DailyOut, summary="The statistics counters per UTC day of a period")
def daily_stats(request, query: Query[StatsQuery]):
    require_supervisor(request.auth)
    project = get_project_for(request.auth, query.project)
    date_from, date_to = _period(query)
    return {
        "project": project.key,
        "date_from": date_from,
        "date_to": date_to,
        "days": stats.daily(project, date_from, date_to),
    }


class MonitoringQuery(Schema):
    project: str


class MonitoredUser(Schema):
    username: str
    name: str
    state: str
    state_since: dt.datetime | None
    state_seconds: int | None
    emails_sent_today: int
    email_status_seconds_today: int


class MonitoringOut(Schema):
    project: str
    at: dt.datetime
    users_in_email_status: int
    states: dict[str, int]
    emails_sent_today: int
    email_status_seconds_today: int
    users: list[MonitoredUser]


@router.get(
    "/monitoring", response=MonitoringOut, summary="Real-time monitoring: users, states, today's figures"
)
def monitoring_now(request, query: Query[MonitoringQuery]):
    require_supervisor(request.auth)
    project = get_project_for(request.auth, query.project)
    return {**monitoring.snapshot(project), "project": project.key}
