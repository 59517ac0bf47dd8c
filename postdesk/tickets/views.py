"""The agent workspace, tickets side: the agent's ticket list (unread in bold, filters), one ticket with its thread(s) in
one column, the reply form (sender account, templates with CC/BCC as the project shows them, quoting, attachments,
the collision warning), transfer (Change pref user) and closing.

Every ticket goes through tickets.access (another agent's ticket without Shared ticket handling is a 404), every
write through tickets.services in one transaction; a DomainError is shown inline with its status."""

from __future__ import annotations

import re

from django.contrib import messages
from django.db import transaction
from django.db.models import Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from postdesk.accounts.access import agent_required
from postdesk.accounts.models import AgentState
from postdesk.core import clock
from postdesk.core.errors import Conflict, DomainError, NotFound
from postdesk.emails.access import emails_visible_to
from postdesk.emails.models import Direction, Email
from postdesk.tickets import services
from postdesk.tickets.access import get_ticket_for, tickets_visible_to
from postdesk.tickets.forms import CloseForm, ReplyForm, TicketFilterForm, TransferForm, uploaded_attachments
from postdesk.tickets.models import Status, Ticket

PAGE_SIZE = 50
TICKET_RELATED = ("project", "type", "owner", "record")


def _ticket_or_404(user, number: str) -> Ticket:
    try:
        return get_ticket_for(user, number, Ticket.objects.select_related(*TICKET_RELATED))
    except NotFound:
        raise Http404("no such ticket")


def _form_error(form, exc: DomainError) -> None:
    """Show a service's error on the field it names (cc[1] is the cc field), else above the form."""
    field = re.split(r"[\[.]", exc.field or "", maxsplit=1)[0]
    form.add_error(field if field in form.fields else None, exc.detail)


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# The reply form, shared with the email page ------------------------------------------------------------------------


def template_preview(project, user, template=None, *, ticket=None, in_reply_to=None, title: str = "") -> dict:
    """What the reply will carry besides the agent's text: its subject, the template's text (added below the
    agent's text by tickets.services.reply), and the template's CC and BCC as far as the project shows them (Display
    template CC/BCC recipients); hidden ones are applied all the same."""
    from postdesk.outbound.services import render as fill

    record = ticket.record if ticket is not None and ticket.record_id else None
    customer = ""
    if in_reply_to is not None:
        customer = in_reply_to.reply_to or in_reply_to.from_address
    elif record is not None:
        customer = record.email
    name = in_reply_to.from_name if in_reply_to is not None and in_reply_to.from_name else ""
    if not name and record is not None:
        name = record.name
    number = ticket.number if ticket is not None else ""
    fields = {
        "subject": ticket.title if ticket is not None else title,
        "name": name,
        "agent": user.display_name,
        "ticket": number,
        "email": customer,
    }
    if in_reply_to is not None and in_reply_to.subject:
        subject = f"Re: {in_reply_to.subject}"
    else:
        subject = ticket.title if ticket is not None else (title or "")
    text, cc, bcc = "", [], []
    if template is not None:
        subject = fill(template.subject, fields) or subject
        text = fill(template.body, fields)
        cc, bcc = list(template.cc or []), list(template.bcc or [])
    if number and number not in subject:
        subject = f"{subject} [{number}]"
    return {
        "template": template,
        "subject": subject,
        "number_pending": not number,
        "text": text,
        "cc": cc if project.display_template_cc else [],
        "bcc": bcc if project.display_template_bcc else [],
        "to": customer,
    }


def reply_context(
    request,
    project,
    form,
    *,
    in_reply_to=None,
    ticket=None,
    action: str,
    template_url: str,
    collision=None,
) -> dict:
    from postdesk.tickets.services import quote

    template = None
    if form.is_bound:
        template = form.templates.get(_int(form.data.get("template")))
    form.fields["template"].widget.attrs.update(
        {
            "hx-get": template_url,
            "hx-target": "#template-fields",
            "hx-swap": "outerHTML",
            "hx-include": "#id_in_reply_to",
        }
    )
    title = getattr(in_reply_to, "subject", "") or ""
    return {
        "form": form,
        "action": action,
        "template_url": template_url,
        "ticket": ticket,
        "in_reply_to": in_reply_to,
        "quote": quote(in_reply_to) if in_reply_to is not None else "",
        "preview": template_preview(
            project, request.user, template, ticket=ticket, in_reply_to=in_reply_to, title=title
        ),
        "has_accounts": bool(form.accounts),
        "collision": collision,
        "files_dropped": bool(request.FILES) if form.is_bound else False,
    }


def template_fields(request, project, *, ticket=None, in_reply_to=None, title: str = ""):
    """The template part of the reply form for htmx (the template select's change)."""
    templates = project.templates.all()
    if not request.user.is_supervisor:
        templates = templates.filter(visible_to_agents=True)
    template = templates.filter(pk=_int(request.GET.get("template"))).first()
    preview = template_preview(
        project, request.user, template, ticket=ticket, in_reply_to=in_reply_to, title=title
    )
    return render(request, "tickets/_template_fields.html", {"preview": preview, "oob": True})


# The ticket list ----------------------------------------------------------------------------------------------------


@agent_required
def ticket_list(request):
    from postdesk.emails.api import decode_cursor, encode_cursor
    from postdesk.emails.views import workspace
    from postdesk.projects.models import TicketType

    user = request.user
    types = TicketType.objects.select_related("project").order_by("project__key", "label")
    if not user.is_supervisor:
        types = types.filter(project__projectmember__user=user)
    form = TicketFilterForm(request.GET or None, ticket_types=list(types))
    qs = tickets_visible_to(user, Ticket.objects.select_related("project", "type", "owner"))
    status = "open"
    if form.is_valid():
        data = form.cleaned_data
        status = data["status"] or "open"
        if data["q"]:
            qs = qs.filter(Q(number__icontains=data["q"]) | Q(title__icontains=data["q"]))
        if data["type"]:
            qs = qs.filter(type_id=data["type"])
        if data["mine"]:
            qs = qs.filter(owner=user)
    if status == "open":
        qs = qs.filter(status=Status.PARK)
    elif status == "closed":
        qs = qs.filter(status=Status.CLOSED)
    after = request.GET.get("after")
    if after:
        try:
            moment, pk = decode_cursor(after)
        except DomainError:
            moment = None
        if moment is not None:
            qs = qs.filter(Q(updated_at__lt=moment) | Q(updated_at=moment, id__lt=pk))
    rows = list(qs.order_by("-updated_at", "-id")[: PAGE_SIZE + 1])
    next_url = None
    if len(rows) > PAGE_SIZE:
        rows = rows[:PAGE_SIZE]
        params = request.GET.copy()
        params["after"] = encode_cursor(rows[-1].updated_at, rows[-1].pk)
        next_url = f"{reverse('ticket-list')}?{params.urlencode()}"
    return render(
        request,
        "tickets/list.html",
        {"form": form, "rows": rows, "next_url": next_url, "status": status, **workspace(request)},
    )


# One ticket ---------------------------------------------------------------------------------------------------------


def _reply_target(ticket: Ticket, user, wanted) -> Email | None:
    """The message a reply answers: the one asked for (if it is on the ticket), else the newest inbound email."""
    qs = emails_visible_to(user, Email.objects.filter(ticket=ticket)).select_related("content", "thread")
    wanted = _int(wanted)
    if wanted is not None:
        email = qs.filter(pk=wanted).first()
        if email is not None:
            return email
    return qs.filter(direction=Direction.IN).order_by("-date", "-id").first()


def _ticket_page(
    request,
    ticket: Ticket,
    *,
    in_reply_to=None,
    reply_form=None,
    transfer_form=None,
    close_form=None,
    collision=None,
    expand=None,
    error: str = "",
    status: int = 200,
):
    from postdesk.emails.views import thread_messages, workspace

    user, project = request.user, ticket.project
    if reply_form is None:
        reply_form = ReplyForm(
            project=project,
            user=user,
            initial={
                "in_reply_to": in_reply_to.pk if in_reply_to is not None else None,
                "opened_at": clock.now().isoformat(),
            },
        )
    context = {
        "ticket": ticket,
        "project": project,
        "threads": thread_messages(
            emails_visible_to(user, Email.objects.filter(ticket=ticket)).select_related("ticket"),
            expand=expand,
        ),
        "reply": reply_context(
            request,
            project,
            reply_form,
            in_reply_to=in_reply_to,
            ticket=ticket,
            action=reverse("ticket-reply", args=[ticket.number]),
            template_url=reverse("ticket-template", args=[ticket.number]),
            collision=collision,
        ),
        "transfer_form": (
            transfer_form or TransferForm(project=project, exclude=ticket.owner)
            if project.change_pref_user
            else None
        ),
        "close_form": close_form or CloseForm(),
        "opened_at": reply_form["opened_at"].value(),
        "error": error,
        **workspace(request),
    }
    return render(request, "tickets/detail.html", context, status=status)


@agent_required
def ticket_detail(request, number: str):
    """The ticket's thread(s) in one column, newest message expanded, with the reply form. The agent is in Email
    status; the owner looking at it clears the unread mark."""
    from postdesk.accounts.services import set_state

    ticket = _ticket_or_404(request.user, number)
    in_reply_to = _reply_target(ticket, request.user, request.GET.get("reply_to"))
    with transaction.atomic():
        services.mark_read(ticket, request.user)
        set_state(request.user, AgentState.EMAIL, project=ticket.project, email=in_reply_to)
    return _ticket_page(request, ticket, in_reply_to=in_reply_to, expand=_int(request.GET.get("open")))


@agent_required
@require_POST
def ticket_reply(request, number: str):
    """Send a reply: through the outbound pipeline, threaded with In-Reply-To/References. Someone else's reply since
    the agent opened the ticket stops it (409) with a 'send anyway' button."""
    user = request.user
    ticket = _ticket_or_404(user, number)
    form = ReplyForm(request.POST, project=ticket.project, user=user)
    in_reply_to = _reply_target(ticket, user, request.POST.get("in_reply_to"))
    if not form.is_valid():
        return _ticket_page(request, ticket, in_reply_to=in_reply_to, reply_form=form, status=422)
    data = form.cleaned_data
    try:
        attachments = uploaded_attachments(request.FILES)
        with transaction.atomic():
            email = services.reply(
                ticket,
                body=data["body"],
                by=user,
                template=form.chosen_template(),
                sender_account=form.account(),
                cc=data["cc"],
                in_reply_to=in_reply_to,
                attachments=attachments,
                opened_at=data["opened_at"],
                force=data["force"],
            )
    except Conflict as exc:
        if exc.field != "collision":
            _form_error(form, exc)
            return _ticket_page(request, ticket, in_reply_to=in_reply_to, reply_form=form, status=exc.status)
        others = services.collision(ticket, user, data["opened_at"])
        return _ticket_page(
            request,
            ticket,
            in_reply_to=in_reply_to,
            reply_form=form,
            collision={"detail": exc.detail, "emails": others},
            expand=others[-1].pk if others else None,
            status=409,
        )
    except DomainError as exc:
        _form_error(form, exc)
        return _ticket_page(request, ticket, in_reply_to=in_reply_to, reply_form=form, status=exc.status)
    to = ", ".join(email.to)
    messages.success(request, f"Reply queued to {to}.")
    return redirect(f"{reverse('ticket-detail', args=[ticket.number])}?open={email.pk}#email-{email.pk}")


@agent_required
def ticket_template(request, number: str):
    ticket = _ticket_or_404(request.user, number)
    in_reply_to = _reply_target(ticket, request.user, request.GET.get("in_reply_to"))
    return template_fields(request, ticket.project, ticket=ticket, in_reply_to=in_reply_to)


@agent_required
def ticket_collision(request, number: str):
    """Polled while the reply form is open: who replied to the ticket since the agent opened it."""

    ticket = _ticket_or_404(request.user, number)
    try:
        since = clock.parse_iso(request.GET.get("opened_at", ""))
    except ValueError:
        since = None
    others = services.collision(ticket, request.user, since)
    names = sorted({e.sent_by.display_name if e.sent_by_id else "someone" for e in others})
    return render(request, "tickets/_collision.html", {"names": names, "ticket": ticket})


@agent_required
@require_POST
def ticket_transfer(request, number: str):
    """Change pref user: hand the ticket to another agent or a supervisor."""
    user = request.user
    ticket = _ticket_or_404(user, number)
    form = TransferForm(request.POST, project=ticket.project, exclude=ticket.owner)
    if not form.is_valid():
        return _ticket_page(
            request, ticket, in_reply_to=_reply_target(ticket, user, None), transfer_form=form, status=422
        )
    to_user = form.user()
    try:
        with transaction.atomic():
            services.transfer_ticket(ticket, to_user, by=user)
    except DomainError as exc:
        _form_error(form, exc)
        return _ticket_page(
            request,
            ticket,
            in_reply_to=_reply_target(ticket, user, None),
            transfer_form=form,
            error=exc.detail,
            status=exc.status,
        )
    messages.success(request, f"Ticket {ticket.number} handed to {to_user.display_name}.")
    if tickets_visible_to(user).filter(pk=ticket.pk).exists():
        return redirect("ticket-detail", number=ticket.number)
    return redirect("ticket-list")


@agent_required
@require_POST
def ticket_close(request, number: str):
    user = request.user
    ticket = _ticket_or_404(user, number)
    form = CloseForm(request.POST)
    if not form.is_valid():
        return _ticket_page(
            request, ticket, in_reply_to=_reply_target(ticket, user, None), close_form=form, status=422
        )
    try:
        with transaction.atomic():
            services.close_ticket(ticket, substatus=form.cleaned_data["substatus"], by=user)
    except DomainError as exc:
        _form_error(form, exc)
        return _ticket_page(
            request,
            ticket,
            in_reply_to=_reply_target(ticket, user, None),
            close_form=form,
            error=exc.detail,
            status=exc.status,
        )
    messages.success(request, f"Ticket {ticket.number} closed ({ticket.get_substatus_display().lower()}).")
    return redirect("ticket-list")
