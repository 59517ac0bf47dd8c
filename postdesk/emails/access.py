"""Which emails a user may see. Every list, detail, search and API call about emails goes through here.

Supervisors see every email. An agent sees, in the projects they are a member of:
- emails not on a ticket that sit in one of their queues (skill level = membership), and
- emails on tickets they may see (tickets.access: their own tickets, or every ticket with Shared ticket handling)."""

from __future__ import annotations

from django.db.models import Q

from postdesk.core.errors import NotFound
from postdesk.emails.models import Email


def email_filter_for(user) -> Q | None:
    """A Q selecting the emails the user may see (None: everything)."""
    if user.is_supervisor:
        return None
    from postdesk.projects.models import AgentQueueSkill
    from postdesk.tickets.access import ticket_filter_for

    queue_ids = list(AgentQueueSkill.objects.filter(user=user).values_list("queue_id", flat=True))
    ticket_q = ticket_filter_for(user, prefix="ticket__")
    return Q(ticket__isnull=True, queue_id__in=queue_ids) | (Q(ticket__isnull=False) & ticket_q)


def emails_visible_to(user, queryset=None):
    queryset = Email.objects.all() if queryset is None else queryset
    q = email_filter_for(user)
    return queryset if q is None else queryset.filter(q)


def get_email_for(user, email_id: int, queryset=None) -> Email:
    email = emails_visible_to(user, queryset).filter(pk=email_id).first()
    if email is None:
        raise NotFound(f"no email {email_id}", field="id")
    return email


def thread_visible_to(user, email: Email, queryset=None):
    """The messages shown with an email the user may see (get_email_for first): every email of its thread that the
    user may see, and our own outbound emails of that thread that are not on a ticket (automatic responses)."""
    from postdesk.emails.models import Direction

    queryset = Email.objects.all() if queryset is None else queryset
    if email.thread_id is None:
        return queryset.filter(pk=email.pk)
    queryset = queryset.filter(thread_id=email.thread_id, project_id=email.project_id)
    q = email_filter_for(user)
    if q is None:
        return queryset
    return queryset.filter(q | Q(ticket__isnull=True, direction=Direction.OUT))
