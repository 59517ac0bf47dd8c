"""Which tickets a user may see and handle: supervisors all; agents, in their projects, the tickets they own, or every
ticket of a project with Shared ticket handling on. Every ticket list, detail, search and API call goes through here."""

from __future__ import annotations

from django.db.models import Q

from postdesk.core.errors import NotFound
from postdesk.tickets.models import Ticket


def ticket_filter_for(user, prefix: str = "") -> Q:
    if user.is_supervisor:
        return Q()
    from postdesk.projects.models import Project

    memberships = list(Project.objects.filter(projectmember__user=user).values_list("id", "shared_tickets"))
    shared = [pk for pk, is_shared in memberships if is_shared]
    return Q(**{f"{prefix}project_id__in": shared}) | Q(
        **{f"{prefix}owner": user, f"{prefix}project_id__in": [pk for pk, _ in memberships]}
    )


def tickets_visible_to(user, queryset=None):
    queryset = Ticket.objects.all() if queryset is None else queryset
    return queryset.filter(ticket_filter_for(user))


def get_ticket_for(user, number: str, queryset=None) -> Ticket:
    # numbers are unique: no ORDER BY (first() would add one, and compiling it costs more than running the query)
    ticket = next(iter(tickets_visible_to(user, queryset).filter(number=number)[:1]), None)
    if ticket is None:
        raise NotFound(f"no ticket {number}", field="ticket")
    return ticket
