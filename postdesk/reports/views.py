"""The supervisor's reports (tutorial section 5): the email log, the ticket list, user-based statistics with charts,
real-time monitoring, and their CSV exports; and the agent's own state switch (Available, Break, Offline).

The email log filters exactly as GET /api/v1/emails (postdesk.emails.api.filtered, page and its cursors), the ticket
list as GET /api/v1/tickets (postdesk.tickets.api.filtered_tickets), so the UI, the API and the exports agree. Lists
are keyset-paginated (never OFFSET, never a count of a million rows). Mail content is never marked safe: subjects and
names are escaped by the templates, and the charts escape their labels."""

from __future__ import annotations

import datetime as dt

from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods

from postdesk.accounts.access import agent_required, supervisor_required
from postdesk.accounts.models import AgentState, User
from postdesk.core.errors import DomainError
from postdesk.emails.api import decode_cursor, encode_cursor, filtered, page
from postdesk.inbound.languages import LANGUAGE_NAMES
from postdesk.projects.models import Project
from postdesk.reports import charts, exports, monitoring, stats
from postdesk.reports.forms import EmailLogForm, PeriodForm, ReportForm, TicketReportForm, bind
from postdesk.tickets.api import filtered_tickets

PAGE_SIZE = 50
AGENT_STATES = (
    AgentState.AVAILABLE,
    AgentState.BREAK,
    AgentState.OFFLINE,
)  # Email status comes from opening email


def _projects() -> list[Project]:
    return list(Project.objects.all())


def _render(request, template: str, report: str, form: ReportForm, context: dict, status: int = 200):
    return render(
        request,
        template,
        {"section": "reports", "report": report, "form": form, "selected": form.selected, **context},
        status=status,
    )


def _link(request, name: str, **changes) -> str:
    """This page's (or another report's) URL with the current query string, some parameters changed or removed."""
    params = request.GET.copy()
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    query = params.urlencode()
    return reverse(name) + (f"?{query}" if query else "")


def _form_query(form) -> str:
    """The form's values (defaults included) as a query string, for the export link and the page links."""
    params = form.data.copy()
    params.pop("cursor", None)
    return params.urlencode()


@supervisor_required
@require_GET
def reports_home(request):
    return redirect("email-log")


# The email log ----------------------------------------------------------------------------------------------------


@supervisor_required
@require_GET
def email_log(request):
    """Every email received and sent: the filters of the API, emails on tickets only with 'Also related to
    tickets', newest first, 50 a page with a 'Next page' cursor."""
    form = bind(EmailLogForm, request, projects=_projects())
    rows, next_cursor, error = [], None, None
    status = 200
    if form.is_valid() and form.selected is not None:
        try:
            rows, next_cursor = page(
                filtered(request.user, form.filters()), PAGE_SIZE, request.GET.get("cursor") or None
            )
        except DomainError as exc:
            error, status = exc.detail, exc.status
    elif form.errors:
        status = 422
    for e in rows:
        e.language_name = LANGUAGE_NAMES.get(e.language, e.language)
    query = _form_query(form)
    return _render(
        request,
        "reports/email_log.html",
        "emails",
        form,
        {
            "rows": rows,
            "error": error,
            "query": query,
            "paged": bool(request.GET.get("cursor")),
            "next_url": f"{reverse('email-log')}?{query}&cursor={next_cursor}" if next_cursor else None,
            "first_url": f"{reverse('email-log')}?{query}",
            "export_url": f"{reverse('email-log-export')}?{query}",
        },
        status,
    )


@supervisor_required
@require_GET
def email_log_export(request):
    """The filtered email log as CSV, every page of it, streamed."""
    form = bind(EmailLogForm, request, projects=_projects())
    if not form.is_valid() or form.selected is None:
        return HttpResponse(
            "Invalid filters: " + form.errors.as_text(), status=422, content_type="text/plain"
        )
    d = form.cleaned_data
    qs = filtered(request.user, form.filters())
    name = f"emails-{d['project'].key}-{_span(d.get('date_from'), d.get('date_to'))}.csv"
    return exports.csv_response(name, exports.email_csv(qs))


def _span(start: dt.date | None, end: dt.date | None) -> str:
    return f"{start.isoformat() if start else 'start'}-{end.isoformat() if end else 'now'}"


# The ticket list --------------------------------------------------------------------------------------------------


def _tickets(request, form: TicketReportForm):
    qs = filtered_tickets(request.user, form.filters())
    labels = form.cleaned_data["types"]
    if labels:  # ids, not a join: the (project, type, created_at) index applies
        project = form.cleaned_data["project"]
        qs = qs.filter(
            type_id__in=list(project.ticket_types.filter(label__in=labels).values_list("id", flat=True))
        )
    return qs


@supervisor_required
@require_GET
def ticket_report(request):
    """The ticket list for supervisors: number and id, type, title, agent, first open, first and last sent and received
    times, counts and the SLA value; by type labels, agent, status and first open time, newest first."""
    form = bind(TicketReportForm, request, projects=_projects())
    rows, next_url, error = [], None, None
    status = 200
    if form.is_valid() and form.selected is not None:
        qs = _tickets(request, form)
        cursor = request.GET.get("cursor")
        try:
            if cursor:
                moment, pk = decode_cursor(cursor)
                qs = qs.filter(Q(created_at__lt=moment) | Q(created_at=moment, id__lt=pk))
            rows = list(qs.order_by("-created_at", "-id")[: PAGE_SIZE + 1])
        except DomainError as exc:
            error, status = exc.detail, exc.status
        if len(rows) > PAGE_SIZE:
            rows = rows[:PAGE_SIZE]
            next_url = (
                f"{reverse('ticket-report')}?{_form_query(form)}"
                f"&cursor={encode_cursor(rows[-1].created_at, rows[-1].pk)}"
            )
    elif form.errors:
        status = 422
    for t in rows:
        t.sla = exports.duration(t.sla_seconds)
    query = _form_query(form)
    return _render(
        request,
        "reports/ticket_report.html",
        "tickets",
        form,
        {
            "rows": rows,
            "error": error,
            "paged": bool(request.GET.get("cursor")),
            "next_url": next_url,
            "first_url": f"{reverse('ticket-report')}?{query}",
            "export_url": f"{reverse('ticket-report-export')}?{query}",
        },
        status,
    )


@supervisor_required
@require_GET
def ticket_report_export(request):
    """The filtered ticket list as CSV (Ticket list > export by labels), with each type's label and export value."""
    form = bind(TicketReportForm, request, projects=_projects())
    if not form.is_valid() or form.selected is None:
        return HttpResponse(
            "Invalid filters: " + form.errors.as_text(), status=422, content_type="text/plain"
        )
    d = form.cleaned_data
    name = f"tickets-{d['project'].key}-{_span(d.get('date_from'), d.get('date_to'))}.csv"
    return exports.csv_response(name, exports.ticket_csv(_tickets(request, form)))


# User-based statistics --------------------------------------------------------------------------------------------

COUNTER_LABELS = {
    "sent": "Sent",
    "response": "Response",
    "bounced": "Bounced",
    "link_clicks": "Link clicks",
    "marked_as_spam": "Marked as spam",
    "delivered": "Delivered",
    "dropped": "Dropped",
    "opened": "Opened",
    "unsubscribed": "Unsubscribed",
}
SHORT_LABELS = {"response": "Resp.", "link_clicks": "Clicks", "marked_as_spam": "Spam", "delivered": "Deliv.",
                "unsubscribed": "Unsub."}  # fmt: skip
GROUPS = (("agent_email", "Agent email"), ("disposition", "Disposition email"), ("mass", "Mass email"))


def _columns() -> list[tuple[str, str, list[tuple[str, str, str]]]]:
    """(group key, group label, [(counter, label, short label)]) in the tutorial's order."""
    out = []
    for key, label in GROUPS:
        counters = [c for c in COUNTER_LABELS if c != "response" or key == "agent_email"]
        out.append(
            (key, label, [(c, COUNTER_LABELS[c], SHORT_LABELS.get(c, COUNTER_LABELS[c])) for c in counters])
        )
    return out


def _cells(entry: dict, columns) -> list[tuple[int, bool]]:
    """The counters of a row in column order, each with whether it starts a group."""
    return [(entry[key][c], i == 0) for key, _, counters in columns for i, (c, _, _) in enumerate(counters)]


@supervisor_required
@require_GET
def agent_statistics(request):
    """The user-based statistics of a period (agent, disposition and mass email counters per agent) as a table with
    totals, and as charts drawn on the server."""
    form = bind(PeriodForm, request, projects=_projects())
    context: dict = {"columns": _columns(), "rows": None}
    status = 200
    if form.is_valid() and form.selected is not None:
        project, start, end = form.selected, form.cleaned_data["date_from"], form.cleaned_data["date_to"]
        entries = stats.per_agent(project, start, end)
        names = dict(
            (u.username, u.display_name)
            for u in User.objects.filter(username__in=[e["agent"] for e in entries]).only(
                "username", "first_name", "last_name"
            )
        )
        totals = stats.totals(entries)
        days = stats.daily(project, start, end)
        columns = context["columns"]
        context.update(
            rows=[(names.get(e["agent"], e["agent"]), e["agent"], _cells(e, columns)) for e in entries],
            totals=_cells(totals, columns),
            charts=_statistics_charts(entries, names, days, totals),
            start=start,
            end=end,
        )
    elif form.errors:
        status = 422
    return _render(request, "reports/statistics.html", "statistics", form, context, status)


def _statistics_charts(entries, names, days, totals) -> list[tuple[str, str, str, str]]:
    """(title, description, svg, css class) for the statistics page; charts with many bars take the whole width."""
    if not entries and not any(stats.all_kinds(d, "sent") for d in days):
        return []
    agents = [names.get(e["agent"], e["agent"]) for e in entries]
    outcome = charts.bar_chart(
        agents,
        [
            charts.Series(label, [stats.all_kinds(e, counter) for e in entries])
            for counter, label in (("sent", "Sent"), ("delivered", "Delivered"), ("opened", "Opened"))
        ],
        title="Sent, delivered and opened emails per agent",
    )
    by_kind = charts.bar_chart(
        agents,
        [charts.Series(label, [e[key]["sent"] for e in entries]) for key, label in GROUPS],
        title="Sent emails per agent by kind",
        stacked=True,
    )
    labels = [d["day"].strftime("%d %b") for d in days]
    daily = charts.line_chart(
        labels,
        [charts.Series(label, [d[key]["sent"] for d in days]) for key, label in GROUPS],
        title="Emails sent per day by kind",
    )
    problems = charts.bar_chart(
        [label for _, label in GROUPS],
        [
            charts.Series(COUNTER_LABELS[c], [totals[key][c] for key, _ in GROUPS])
            for c in ("bounced", "dropped", "marked_as_spam", "unsubscribed", "link_clicks")
        ],
        title="Bounces, drops, spam reports, unsubscribes and link clicks by kind",
        group_width=150,
    )
    wide = "wide" if len(entries) > 6 else ""
    return [
        ("Sent, delivered and opened per agent", "All kinds of email together.", outcome, wide),
        ("Sent per agent by kind", "Agent, disposition and mass email stacked.", by_kind, wide),
        ("Emails sent per day", "Each UTC day of the period.", daily, "wide" if len(days) > 45 else ""),
        ("Delivery problems and engagement by kind", "Totals of the period.", problems, ""),
    ]


# Real-time monitoring ---------------------------------------------------------------------------------------------


def _monitoring_context(request):
    form = bind(ReportForm, request, projects=_projects())
    snapshot = None
    if form.is_valid() and form.selected is not None:
        snapshot = monitoring.snapshot(form.selected)
        for row in snapshot["users"]:
            row["state_for"] = exports.duration(row["state_seconds"])
            row["email_status_today"] = exports.duration(row["email_status_seconds_today"])
        snapshot["email_status_today"] = exports.duration(snapshot["email_status_seconds_today"])
    live_url = _link(request, "monitoring-live", project=form.selected.key if form.selected else None)
    return form, {"snapshot": snapshot, "live_url": live_url}


@supervisor_required
@require_GET
def monitoring_page(request):
    """Users and their state (Email status included), the number of users in Email status, emails sent today and the
    time spent in Email status; the figures refresh every second without reloading (htmx polls monitoring-live)."""
    form, context = _monitoring_context(request)
    return _render(request, "reports/monitoring.html", "monitoring", form, context)


@supervisor_required
@require_GET
def monitoring_live(request):
    """The live part of the monitoring page alone (polled every second)."""
    form, context = _monitoring_context(request)
    return _render(request, "reports/_monitoring_live.html", "monitoring", form, context)


# The agent's own state ----------------------------------------------------------------------------------------------


@agent_required
@require_http_methods(["GET", "POST"])
def agent_state(request):
    """GET: the user's state with buttons to change it (a fragment for htmx). POST state=available|break|offline:
    change it (Email status is set by opening an email), then back to the page the form was on."""
    from postdesk.accounts.services import set_state

    if request.method == "POST":
        state = request.POST.get("state", "")
        if state not in AGENT_STATES:
            return HttpResponse("state is available, break or offline", status=422, content_type="text/plain")
        set_state(request.user, state)
        if not request.htmx:
            back = request.POST.get("next") or request.headers.get("Referer") or ""
            if not url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure()):
                back = reverse("inbox")
            return redirect(back)
    return render(
        request,
        "reports/_agent_state.html",
        {"state": request.user.state, "label": AgentState(request.user.state).label, "choices": AGENT_STATES},
    )
