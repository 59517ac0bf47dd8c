"""The agent workspace, emails side (tutorial sections 1-4): the inbox (new emails of the agent's queues, refreshed
live), one email with its thread (opening locks it), the message document shown in a sandboxed iframe, inline images,
attachment downloads, assigning to a new or existing ticket, replying (which makes a ticket), handing over, closing,
and search.

Mail content is never marked safe in our pages: subjects, names and attachment names are escaped by the templates,
and HTML bodies are served only as their own document (``email_body``, with a sandbox CSP) inside ``<iframe
sandbox="">``. Every email goes through emails.access, every ticket through tickets.access; writes go through the
services in one transaction."""

from __future__ import annotations

import html as html_lib
import re
from collections import defaultdict
from dataclasses import dataclass

from django.contrib import messages
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import BooleanField, ExpressionWrapper, Prefetch, Q
from django.db.models.expressions import RawSQL
from django.db.models.functions import Length
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from postdesk.accounts.access import agent_required
from postdesk.accounts.models import AgentState
from postdesk.core import clock
from postdesk.core.errors import Conflict, DomainError, NotFound
from postdesk.emails import search as fulltext
from postdesk.emails.access import emails_visible_to, get_email_for, thread_visible_to
from postdesk.emails.forms import EmailReplyForm, ExistingTicketForm, NewTicketForm
from postdesk.emails.models import Attachment, Direction, Email, Status
from postdesk.inbound.languages import LANGUAGE_NAMES
from postdesk.tickets import services
from postdesk.tickets.access import get_ticket_for, tickets_visible_to
from postdesk.tickets.forms import TransferForm, uploaded_attachments
from postdesk.tickets.models import Ticket

# Raster images only (never SVG): the declared type must be one of these and the bytes must start like it.
RASTER_TYPES = {"image/png", "image/jpeg", "image/jpg", "image/pjpeg", "image/gif", "image/webp"}
INLINE_TOKEN_SALT = "postdesk.emails.inline"
INLINE_TOKEN_MAX_AGE = 12 * 3600
SEARCH_LIMIT = 50
TICKET_CANDIDATES = 20


def workspace(request) -> dict:
    """Context every workspace page shares: whether the Search link shows."""
    return {"search_enabled": bool(search_projects(request.user))}


def search_projects(user) -> list[int]:
    """Projects whose emails and tickets the user may search: supervisors all, agents those with Search on."""
    from postdesk.projects.models import Project

    projects = (
        Project.objects.all() if user.is_supervisor else Project.objects.filter(projectmember__user=user)
    )
    if not user.is_supervisor:
        projects = projects.filter(search=True)
    return list(projects.values_list("id", flat=True))


def _email_or_404(user, email_id: int, queryset=None) -> Email:
    try:
        return get_email_for(user, email_id, queryset)
    except NotFound:
        raise Http404("no such email")


def _form_error(form, exc: DomainError) -> None:
    """Show a service's error on the field it names (cc[1] is the cc field), else above the form."""
    field = re.split(r"[\[.]", exc.field or "", maxsplit=1)[0]
    form.add_error(field if field in form.fields else None, exc.detail)


def _check_lock(email: Email, user) -> None:
    """Acting on an email someone else has open (a live lock) is a conflict, except for supervisors."""
    if (
        email.locked_by_id
        and email.locked_by_id != user.pk
        and services.lock_is_live(email)
        and not user.is_supervisor
    ):
        raise Conflict(f"{email.locked_by.display_name} is working on this email", field="email")


# The inbox ----------------------------------------------------------------------------------------------------------

INBOX_FIELDS = (
    "id", "date", "from_address", "from_name", "subject", "language", "has_attachments", "locked_by_id",
)  # fmt: skip


@dataclass(slots=True)
class InboxRow:
    """One row of the inbox: plain values (no model instances, no URL reversing per row: the list is rendered up to
    250 rows every few seconds)."""

    id: int
    date: object
    from_address: str
    from_name: str
    subject: str
    language: str
    has_attachments: bool
    locked_by_id: int | None
    queue_name: str = ""
    language_name: str = ""
    href: str = ""
    date_iso: str = ""
    date_short: str = ""


def new_emails_for(user) -> list[InboxRow]:
    """The agent's new emails: status new, no ticket, in one of their queues (skill level = membership), not
    locked by someone else with a live lock; oldest first, at most the project's list size per project.

    One query per queue, each a range of the partial index email_new_by_queue (queue, date, id) with a LIMIT."""
    from postdesk.projects.models import AgentQueueSkill

    skills = AgentQueueSkill.objects.filter(user=user).select_related("queue__project")
    queues_by_project = defaultdict(list)
    for skill in skills:
        queues_by_project[skill.queue.project].append(skill.queue)
    free = (
        Q(locked_by__isnull=True)
        | Q(locked_by=user)
        | Q(locked_at__lt=clock.now() - services.LOCK_TIMEOUT)
        | Q(locked_at__isnull=True)
    )
    prefix = reverse("email-detail", args=[0])[: -len("0/")]
    rows: list[InboxRow] = []
    for project, queues in queues_by_project.items():
        found: list[InboxRow] = []
        for queue in queues:
            values = (
                Email.objects.filter(queue=queue, status=Status.NEW, ticket__isnull=True)
                .filter(free)
                .order_by("date", "id")
                .values_list(*INBOX_FIELDS)[: project.list_size]
            )
            for value in values:
                row = InboxRow(*value, queue_name=queue.name)
                found.append(row)
        found.sort(key=lambda e: (e.date, e.id))
        rows += found[: project.list_size]
    rows.sort(key=lambda e: (e.date, e.id))
    for row in rows:
        row.language_name = LANGUAGE_NAMES.get(row.language, row.language)
        row.href = f"{prefix}{row.id}/"
        row.date_iso = row.date.isoformat()
        row.date_short = row.date.strftime("%d %b %H:%M")
    return rows


def inbox_rows_html(rows: list[InboxRow], user) -> str:
    """The rows of the inbox as HTML, every value escaped. Built in Python: a 250-row list rendered through the
    template engine cost more than the database work behind it."""
    if not rows:
        return '<tr class="empty"><td colspan="5" class="muted">No new emails in your queues.</td></tr>'
    esc = html_lib.escape
    out = []
    for e in rows:
        extra = f' <span class="muted">{esc(e.from_address)}</span>' if e.from_name else ""
        badges = ' <span class="badge" title="Has attachments">attachment</span>' if e.has_attachments else ""
        if e.locked_by_id == user.pk:
            badges += ' <span class="badge ok">opened by you</span>'
        out.append(
            f'<tr data-href="{e.href}" data-id="{e.id}">'
            f'<td class="col-queue">{esc(e.queue_name)}</td>'
            f'<td class="col-lang" title="{esc(e.language)}">{esc(e.language_name) or "–"}</td>'
            f'<td class="col-from"><span class="sender">{esc(e.from_name or e.from_address)}</span>{extra}</td>'
            f'<td class="col-subject"><a href="{e.href}">{esc(e.subject) or "(no subject)"}</a>{badges}</td>'
            f'<td class="col-date"><time datetime="{e.date_iso}">{e.date_short}</time></td></tr>'
        )
    return "\n".join(out)


@agent_required
def inbox(request):
    from postdesk.accounts.services import set_state

    if request.user.state in (AgentState.EMAIL, AgentState.OFFLINE):
        set_state(request.user, AgentState.AVAILABLE)
    rows = new_emails_for(request.user)
    return render(
        request,
        "emails/inbox.html",
        {
            "rows": rows,
            "rows_html": mark_safe(inbox_rows_html(rows, request.user)),  # noqa: S308
            **workspace(request),
        },
    )


@agent_required
def inbox_rows(request):
    """The list body alone, polled by htmx every few seconds (no agent-state change, no writes)."""
    rows = new_emails_for(request.user)
    return render(
        request,
        "emails/_inbox_rows.html",
        {"rows": rows, "rows_html": mark_safe(inbox_rows_html(rows, request.user))},
    )  # noqa: S308


# One email and its thread ------------------------------------------------------------------------------------------


def body_size(text: str, html_length: int = 0) -> str:
    """A height class for a message's iframe (its document cannot be measured: it runs no script); the iframe can
    be resized."""
    lines = max((text or "").count("\n") + len(text or "") // 90, (html_length or 0) // 40)
    return "short" if lines < 12 else "medium" if lines < 40 else "long"


def thread_messages(queryset, *, expand: int | None = None) -> list[list[Email]]:
    """Messages for the one-column thread view, grouped by thread (threads in order of their first message, messages
    by date); the newest message, and `expand`, are shown expanded."""
    rows = list(
        queryset.select_related("content", "sent_by", "queue")
        .defer("content__html")
        .annotate(
            has_html=ExpressionWrapper(Q(content__html__gt=""), output_field=BooleanField()),
            html_length=Length("content__html"),
        )
        .prefetch_related(
            Prefetch(
                "attachments",
                queryset=Attachment.objects.filter(inline=False)
                .only("id", "email_id", "filename", "original_filename", "content_type", "size")
                .order_by("id"),
                to_attr="files",
            )
        )
        .order_by("date", "id")
    )
    groups: dict[int | None, list[Email]] = {}
    for email in rows:
        content = getattr(email, "content", None)
        email.text = content.text if content is not None else email.first_line
        email.size_class = body_size(email.text, email.html_length if email.has_html else 0)
        email.expanded = email.pk == expand
        groups.setdefault(email.thread_id, []).append(email)
    if rows:
        rows[-1].expanded = True
    return list(groups.values())


def _email_page(request, email: Email, *, forms: dict | None = None, status: int = 200):
    from postdesk.records.services import find_by_email
    from postdesk.tickets.views import reply_context

    user, project = request.user, email.project
    forms = forms or {}
    actionable = email.ticket_id is None and email.status == Status.NEW
    record = find_by_email(project, email.from_address) if email.direction == Direction.IN else None
    context = {
        "email": email,
        "project": project,
        "threads": thread_messages(
            thread_visible_to(user, email, Email.objects.select_related("ticket")), expand=email.pk
        ),
        "actionable": actionable,
        "record": record,
        "may_create_record": record is None
        and bool(email.from_address)
        and (project.agents_create_records or user.is_supervisor),
        "new_form": forms.get("new") or NewTicketForm(project=project, email=email),
        "existing_form": forms.get("existing") or ExistingTicketForm(),
        "transfer_form": (
            forms.get("transfer") or TransferForm(project=project, exclude=user)
            if project.change_pref_user
            else None
        ),
        "reply": reply_context(
            request,
            project,
            forms.get("reply")
            or EmailReplyForm(project=project, user=user, email=email, initial={"in_reply_to": email.pk}),
            in_reply_to=email,
            action=reverse("email-reply", args=[email.pk]),
            template_url=reverse("email-template", args=[email.pk]),
        ),
        "locked_by_me": email.locked_by_id == user.pk and services.lock_is_live(email),
        **workspace(request),
    }
    return render(request, "emails/email.html", context, status=status)


EMAIL_RELATED = ("project", "queue", "locked_by", "ticket")


@agent_required
def email_detail(request, email_id: int):
    """Open an email: with Lock emails to agents it is locked to the agent (other agents no longer see it) and the
    agent is in Email status. An email on a ticket opens on its ticket's page."""
    email = _email_or_404(request.user, email_id, Email.objects.select_related(*EMAIL_RELATED))
    if email.ticket_id:
        url = reverse("ticket-detail", args=[email.ticket.number])
        return redirect(f"{url}?open={email.pk}#email-{email.pk}")
    try:
        with transaction.atomic():
            services.open_email(email, request.user)
    except Conflict as exc:
        return render(
            request, "emails/locked.html", {"email": email, "error": exc, **workspace(request)}, status=409
        )
    return _email_page(request, email)


def ticket_candidates(user, email: Email, q: str) -> list[Ticket]:
    """Tickets of the email's project the user may see, by number, title or sender; without a query, the
    tickets of the email's sender."""
    qs = tickets_visible_to(user, Ticket.objects.filter(project_id=email.project_id)).select_related(
        "type", "owner"
    )
    q = (q or "").strip()[:200]
    if q:
        qs = qs.filter(
            Q(number__icontains=q)
            | Q(title__icontains=q)
            | Q(record__email__icontains=q)
            | Q(emails__from_address__icontains=q)
        )
    elif email.from_address:
        qs = qs.filter(
            Q(emails__from_address__iexact=email.from_address) | Q(record__email__iexact=email.from_address)
        )
    else:
        return []
    return list(qs.distinct().order_by("-updated_at", "-id")[:TICKET_CANDIDATES])


@agent_required
def email_ticket_search(request, email_id: int):
    email = _email_or_404(request.user, email_id, Email.objects.select_related("project"))
    q = request.GET.get("q", "")
    return render(
        request,
        "emails/_ticket_candidates.html",
        {"email": email, "candidates": ticket_candidates(request.user, email, q), "q": q},
    )


@agent_required
@require_POST
def email_assign(request, email_id: int):
    """Make the opened email a new ticket (type, title) or add it to an existing one; optionally create a customer
    record from the sender (Enable agents to create new records)."""
    from postdesk.records.services import create_record

    user = request.user
    email = _email_or_404(user, email_id, Email.objects.select_related(*EMAIL_RELATED))
    if email.ticket_id:
        messages.info(request, f"This email is already on ticket {email.ticket.number}.")
        return redirect("ticket-detail", number=email.ticket.number)
    project = email.project
    existing = request.POST.get("mode") == "existing"
    form = (
        ExistingTicketForm(request.POST)
        if existing
        else NewTicketForm(request.POST, project=project, email=email)
    )
    key = "existing" if existing else "new"
    if not form.is_valid():
        return _email_page(request, email, forms={key: form}, status=422)
    try:
        with transaction.atomic():
            _check_lock(email, user)
            record = None
            if form.cleaned_data.get("create_record"):
                record = create_record(project, name=email.from_name, email=email.from_address, by=user)
            if existing:
                ticket = get_ticket_for(user, form.cleaned_data["ticket"].strip())
                ticket = services.assign_email(email, ticket=ticket, record=record, by=user)
            else:
                ticket = services.assign_email(
                    email,
                    title=form.cleaned_data["title"] or None,
                    ticket_type=form.ticket_type(),
                    record=record,
                    by=user,
                )
    except DomainError as exc:
        email.refresh_from_db()
        _form_error(form, exc)
        return _email_page(request, email, forms={key: form}, status=exc.status)
    verb = "added to" if existing else "is now"
    messages.success(request, f"“{email.subject or '(no subject)'}” {verb} ticket {ticket.number}.")
    return redirect("ticket-detail", number=ticket.number)


@agent_required
@require_POST
def email_reply(request, email_id: int):
    """Reply to an email that has no ticket: it is assigned to a new ticket first (tutorial section 2), in the same
    transaction as the reply."""
    user = request.user
    email = _email_or_404(user, email_id, Email.objects.select_related(*EMAIL_RELATED, "thread"))
    if email.ticket_id:
        return redirect("ticket-detail", number=email.ticket.number)
    project = email.project
    form = EmailReplyForm(request.POST, project=project, user=user, email=email)
    if not form.is_valid():
        return _email_page(request, email, forms={"reply": form}, status=422)
    try:
        attachments = uploaded_attachments(request.FILES)
        with transaction.atomic():
            _check_lock(email, user)
            ticket = services.assign_email(
                email, title=form.cleaned_data["title"] or None, ticket_type=form.ticket_type(), by=user
            )
            services.reply(
                ticket,
                body=form.cleaned_data["body"],
                by=user,
                template=form.chosen_template(),
                sender_account=form.account(),
                cc=form.cleaned_data["cc"],
                in_reply_to=email,
                attachments=attachments,
            )
    except DomainError as exc:
        email.refresh_from_db()
        _form_error(form, exc)
        return _email_page(request, email, forms={"reply": form}, status=exc.status)
    messages.success(
        request, f"Reply queued; “{email.subject or '(no subject)'}” is now ticket {ticket.number}."
    )
    return redirect("ticket-detail", number=ticket.number)


@agent_required
def email_template(request, email_id: int):
    """The reply form's template part (subject, template text, CC/BCC as the project shows them), for htmx."""
    from postdesk.tickets.views import template_fields

    email = _email_or_404(request.user, email_id, Email.objects.select_related("project", "ticket"))
    return template_fields(
        request, email.project, ticket=email.ticket, in_reply_to=email, title=email.subject
    )


@agent_required
@require_POST
def email_transfer(request, email_id: int):
    """Change pref user for an email without a ticket: it is locked to the other agent."""
    user = request.user
    email = _email_or_404(user, email_id, Email.objects.select_related(*EMAIL_RELATED))
    project = email.project
    form = TransferForm(request.POST, project=project, exclude=user)
    if not form.is_valid():
        return _email_page(request, email, forms={"transfer": form}, status=422)
    try:
        with transaction.atomic():
            _check_lock(email, user)
            if email.ticket_id or email.status != Status.NEW:
                raise Conflict("only a new email without a ticket can be handed over", field="agent")
            services.transfer_email(email, form.user(), by=user)
    except DomainError as exc:
        _form_error(form, exc)
        return _email_page(request, email, forms={"transfer": form}, status=exc.status)
    messages.success(request, f"“{email.subject or '(no subject)'}” handed to {form.user().display_name}.")
    return redirect("inbox")


@agent_required
@require_POST
def email_close(request, email_id: int):
    """Handle an email without a ticket (spam, nothing to do): it leaves the lists."""
    user = request.user
    email = _email_or_404(user, email_id, Email.objects.select_related(*EMAIL_RELATED))
    try:
        with transaction.atomic():
            _check_lock(email, user)
            services.close_email(email, by=user)
    except DomainError as exc:
        messages.error(request, exc.detail)
        return redirect("email-detail", email_id=email.pk)
    messages.success(request, f"“{email.subject or '(no subject)'}” closed without a ticket.")
    return redirect("inbox")


# The message document, inline images, attachments ------------------------------------------------------------------


def inline_token(email_id: int, attachment_id: int) -> str:
    return signing.dumps([email_id, attachment_id], salt=INLINE_TOKEN_SALT, compress=False)


def _inline_url(email: Email, attachment_id: int) -> str:
    url = reverse("email-inline", args=[email.pk, attachment_id])
    return f"{url}?t={inline_token(email.pk, attachment_id)}"


BODY_CSS = (
    "body{margin:8px 12px;font:14px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1d2330;"
    "overflow-wrap:anywhere}img{max-width:100%;height:auto}pre{white-space:pre-wrap;word-break:break-word;"
    "font:13px/1.5 ui-monospace,SFMono-Regular,Menlo,monospace;margin:0}table{max-width:100%}"
)


def message_document(request, email: Email) -> tuple[str, str]:
    """(HTML document, Content-Security-Policy) of one message, for the sandboxed iframe."""
    from postdesk.inbound.sanitize import allow_remote_images, resolve_cids, sanitize_html

    content = getattr(email, "content", None)
    html = content.html if content is not None else ""
    text = content.text if content is not None else ""
    inline_prefix = request.build_absolute_uri(
        reverse("email-inline", args=[email.pk, 0]).rsplit("/", 1)[0] + "/"
    )
    if html:
        if email.direction == Direction.OUT:
            html, _ = sanitize_html(html)  # inbound HTML is stored sanitised; our own is sanitised when shown
        if email.show_images:
            html = allow_remote_images(html)
        if "cid:" in html.lower():
            cids = {
                (a.content_id or "").strip().strip("<>").lower(): a.pk
                for a in email.attachments.only("id", "content_id").exclude(content_id="")
            }
            html = resolve_cids(
                html,
                lambda cid: _inline_url(email, cids[cid.lower()]) if cid.lower() in cids else None,
            )
        body = html
    else:
        body = f"<pre>{html_lib.escape(text)}</pre>"
    document = (
        '<!doctype html><html><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">'
        f"<style>{BODY_CSS}</style></head><body>{body}</body></html>"
    )
    images = f"data: {inline_prefix}" + (" https: http:" if email.show_images else "")
    csp = (
        f"default-src 'none'; img-src {images}; style-src 'unsafe-inline'; font-src data:; "
        "frame-ancestors 'self'; base-uri 'none'; form-action 'none'; sandbox"
    )
    return document, csp


@agent_required
def email_body(request, email_id: int):
    """The iframe document: sanitised HTML (or the text, escaped), with its own CSP: nothing runs, nothing loads but
    data: images and this email's inline images (and remote images once the agent allowed them)."""
    email = _email_or_404(request.user, email_id, Email.objects.select_related("content"))
    document, csp = message_document(request, email)
    response = HttpResponse(document, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = csp
    response["X-Frame-Options"] = "SAMEORIGIN"
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "private, no-store"
    return response


def raster_type(data: bytes) -> str | None:
    """The image type the bytes really are (PNG, JPEG, GIF, WebP), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def email_inline(request, email_id: int, attachment_id: int):
    """An inline (cid:) image of a message: raster types only, never SVG. Allowed with a token from the message
    document (the sandboxed document has an opaque origin, so the browser sends no session cookie), or to a
    logged-in user who may see the email."""
    token = request.GET.get("t", "")
    allowed = False
    if token:
        try:
            allowed = signing.loads(token, salt=INLINE_TOKEN_SALT, max_age=INLINE_TOKEN_MAX_AGE) == [
                email_id,
                attachment_id,
            ]
        except signing.BadSignature:
            allowed = False
    if not allowed:
        if not request.user.is_authenticated:
            raise Http404("no such image")
        _email_or_404(request.user, email_id)
    attachment = Attachment.objects.filter(pk=attachment_id, email_id=email_id).first()
    if attachment is None:
        raise Http404("no such image")
    data = bytes(attachment.data)
    declared = (attachment.content_type or "").split(";")[0].strip().lower()
    actual = raster_type(data)
    if declared not in RASTER_TYPES or actual is None:
        raise Http404("not an image")
    response = HttpResponse(data, content_type=actual)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Content-Disposition"] = content_disposition_header(True, attachment.filename or "image")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@agent_required
def attachment_download(request, email_id: int, attachment_id: int):
    """Attachments are only ever served as downloads, never rendered from our origin."""
    email = _email_or_404(request.user, email_id)
    attachment = email.attachments.filter(pk=attachment_id).first()
    if attachment is None:
        raise Http404("no such attachment")
    response = HttpResponse(bytes(attachment.data), content_type="application/octet-stream")
    response["Content-Disposition"] = content_disposition_header(True, attachment.filename or "attachment")
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@agent_required
@require_POST
def allow_images(request, email_id: int):
    """Show the remote images of this email (the per-email choice); htmx gets the message body back."""
    email = _email_or_404(request.user, email_id, Email.objects.select_related("project", "ticket"))
    with transaction.atomic():
        services.allow_images(email, by=request.user)
    if request.htmx:
        message = thread_messages(Email.objects.filter(pk=email.pk))[0][0]
        return render(request, "emails/_message_body.html", {"message": message})
    if email.ticket_id:
        url = reverse("ticket-detail", args=[email.ticket.number])
        return redirect(f"{url}?open={email.pk}#email-{email.pk}")
    return redirect("email-detail", email_id=email.pk)


# Search -------------------------------------------------------------------------------------------------------------


@agent_required
def search(request):
    """Full text across the emails, and number/title across the tickets, the user may see in projects with Search
    on; email results show the Queue column."""
    projects = search_projects(request.user)
    if not projects:
        raise PermissionDenied("Search is off in your projects")
    q = request.GET.get("q", "").strip()[:200]
    emails, tickets = [], []
    if q:
        match = fulltext.matching_ids_sql(q, prefix_last=True)
        if match is not None:
            emails = list(
                emails_visible_to(
                    request.user,
                    Email.objects.filter(project_id__in=projects).select_related(
                        "queue", "ticket", "project"
                    ),
                )
                .filter(id__in=RawSQL(*match))  # noqa: S611 - fixed SQL, the query is a bound parameter
                .order_by("-date", "-id")[:SEARCH_LIMIT]
            )
        tickets = list(
            tickets_visible_to(
                request.user, Ticket.objects.filter(project_id__in=projects).select_related("type", "owner")
            )
            .filter(Q(number__icontains=q) | Q(title__icontains=q))
            .order_by("-updated_at", "-id")[:SEARCH_LIMIT]
        )
    return render(
        request,
        "emails/search.html",
        {"q": q, "emails": emails, "tickets": tickets, "limit": SEARCH_LIMIT, **workspace(request)},
    )
