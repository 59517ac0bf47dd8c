"""The supervisor console (projects, their e-mail settings, queues, Queues & Skills, templates, ticket types, cloning,
the audit log) and the agent's own read-only 'My settings' page.

Every write calls projects.services inside one transaction; a DomainError is shown inline on the field it names, with
the error's HTTP status (422 invalid, 409 conflict)."""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from postdesk.accounts.access import agent_required, supervisor_required
from postdesk.core.errors import DomainError
from postdesk.projects import rules, services
from postdesk.projects.forms import (
    BOOLEAN_SETTINGS,
    CloneForm,
    ProjectForm,
    QueueForm,
    SettingsForm,
    TemplateForm,
    TicketTypeForm,
    int_or_text,
)
from postdesk.projects.models import AgentQueueSkill, Project


def _project(key: str) -> Project:
    project = Project.objects.filter(key=key).first()
    if project is None:
        raise Http404("no such project")
    return project


def _page(request, template: str, context: dict, status: int = 200):
    return render(request, template, context, status=status)


def _project_page(request, project: Project, tab: str, template: str, context: dict, status: int = 200):
    return _page(request, template, {"project": project, "tab": tab, **context}, status)


# Supervisor home and projects -----------------------------------------------------------------------------------


@supervisor_required
def supervisor_home(request):
    from postdesk.integrations.services import disabled_for_failure
    from postdesk.mailboxes.models import EmailAccount

    projects = Project.objects.all()
    return render(
        request,
        "projects/supervisor_home.html",
        {
            "projects": projects,
            "form": ProjectForm(),
            "account_count": EmailAccount.objects.count(),
            "disabled_webhooks": disabled_for_failure(),
        },
    )


@supervisor_required
def project_create(request):
    form = ProjectForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                project = services.create_project(
                    key=form.cleaned_data["key"], name=form.cleaned_data["name"], by=request.user
                )
        except DomainError as exc:
            form.add_domain_error(exc)
            status = exc.status
        else:
            messages.success(request, f"Project {project.key} created with its default queue.")
            return redirect("project-settings", key=project.key)
    return _page(request, "projects/project_create.html", {"form": form}, status)


@supervisor_required
def project_settings(request, key: str):
    """General settings: every Email handling option, the sender accounts with the default and the template
    visibility, saved together in one transaction."""
    from postdesk.mailboxes.models import EmailAccount, Protocol
    from postdesk.mailboxes.services import account_named, accounts_named

    project = _project(key)
    status = 200
    if request.method == "POST":
        form = SettingsForm(request.POST, project=project)
        if form.is_valid():
            values = form.settings_values()
            try:
                with transaction.atomic():
                    services.rename_project(project, form.cleaned_data["name"], by=request.user)
                    services.update_settings(project, values, by=request.user)
                    accounts = accounts_named(form.selected("sender_accounts"), "sender_accounts")
                    # the project's own default sender (the radio); none chosen: the accounts' Default decides
                    default_name = form.cleaned_data.get("default_sender_account")
                    default = account_named(default_name, "default_sender_account") if default_name else None
                    from postdesk.mailboxes.services import default_sender_for

                    effective = default_sender_for(project)
                    if (default is not None and default.pk not in {a.pk for a in accounts} and effective is not None
                            and default.pk == effective.pk):
                        default = None  # the current default was taken off this project's list with its checkbox
                    services.set_sender_accounts(project, accounts, by=request.user, default=default)
                    services.set_template_visibility(
                        project, set(form.selected("visible_templates")), by=request.user
                    )
            except DomainError as exc:
                form.add_domain_error(exc)
                # show every other broken Email handling rule too, not only the first one
                for problem in rules.settings_problems({**services.settings_of(project), **values}):
                    form.add_domain_error(problem)
                status = exc.status
                project = _project(key)
            else:
                messages.success(request, "Settings saved.")
                return redirect("project-settings", key=project.key)
        else:
            status = 422
    else:
        form = SettingsForm(initial=SettingsForm.initial_for(project), project=project)
    senders = EmailAccount.objects.filter(protocol=Protocol.SMTP)
    return _project_page(
        request,
        project,
        "settings",
        "projects/settings.html",
        {
            "form": form,
            "boolean_fields": [form[name] for name, _, _ in BOOLEAN_SETTINGS],
            "senders": senders,
            "selected_senders": set(form.selected("sender_accounts")),
            "default_sender": form.value_of("default_sender_account"),
            "templates": project.templates.all(),
            "visible_templates": set(form.selected("visible_templates")),
        },
        status,
    )


# Queues ---------------------------------------------------------------------------------------------------------


def _queues_page(request, project, *, form=None, row_errors=None, row_values=None, status=200):
    queues = list(project.queues.all())
    counts = dict(
        AgentQueueSkill.objects.filter(queue__project=project).values_list("queue_id").annotate(n=Count("id"))
    )
    row_errors, row_values = row_errors or {}, row_values or {}
    rows = [
        {
            "queue": q,
            "agents": counts.get(q.pk, 0),
            "error": row_errors.get(q.pk),
            "value": row_values.get(q.pk, q.name),
        }
        for q in queues
    ]
    return _project_page(
        request,
        project,
        "queues",
        "projects/queues.html",
        {"rows": rows, "form": form or QueueForm()},
        status,
    )


@supervisor_required
def project_queues(request, key: str):
    """Queues tab: the list (default queue first) and New email queue (a name and a language)."""
    project = _project(key)
    if request.method != "POST":
        return _queues_page(request, project)
    form = QueueForm(request.POST)
    form.is_valid()
    try:
        with transaction.atomic():
            queue = services.create_queue(
                project,
                name=form.cleaned_data["name"],
                language=form.cleaned_data["language"],
                by=request.user,
            )
    except DomainError as exc:
        form.add_domain_error(exc)
        return _queues_page(request, project, form=form, status=exc.status)
    messages.success(request, f"Queue {queue.name} ({queue.language}) created.")
    return redirect("project-queues", key=project.key)


def _queue(project, queue_id: int):
    queue = project.queues.filter(pk=queue_id).first()
    if queue is None:
        raise Http404("no such queue")
    return queue


@supervisor_required
@require_POST
def project_queue_rename(request, key: str, queue_id: int):
    project = _project(key)
    queue = _queue(project, queue_id)
    name = request.POST.get("name", "")
    try:
        with transaction.atomic():
            services.update_queue(queue, name=name, by=request.user)
    except DomainError as exc:
        return _queues_page(
            request,
            project,
            row_errors={queue_id: exc.detail},
            row_values={queue_id: name},
            status=exc.status,
        )
    messages.success(request, f"Queue renamed {queue.name}.")
    return redirect("project-queues", key=project.key)


@supervisor_required
@require_POST
def project_queue_delete(request, key: str, queue_id: int):
    project = _project(key)
    queue = _queue(project, queue_id)
    try:
        with transaction.atomic():
            services.delete_queue(queue, by=request.user)
    except DomainError as exc:
        return _queues_page(request, project, row_errors={queue_id: exc.detail}, status=exc.status)
    messages.success(request, f"Queue {queue.name} deleted; its emails moved to the default queue.")
    return redirect("project-queues", key=project.key)


# Agents > Queues & Skills ---------------------------------------------------------------------------------------


def _matrix(project, errors=None, values=None):
    from postdesk.accounts.models import Role, User

    queues = list(project.queues.all())
    levels = {
        (s.user_id, s.queue_id): s.level for s in AgentQueueSkill.objects.filter(queue__project=project)
    }
    user_ids = {uid for uid, _ in levels}
    agents = User.objects.filter(is_active=True).filter(Q(role=Role.AGENT) | Q(pk__in=user_ids))
    errors, values = errors or {}, values or {}
    rows = []
    for agent in agents.order_by("username"):
        cells = []
        for queue in queues:
            cell = (agent.pk, queue.pk)
            level = levels.get(cell)
            cells.append(
                {
                    "agent": agent,
                    "queue": queue,
                    "value": values.get(cell, "" if level is None else level),
                    "error": errors.get(cell),
                }
            )
        rows.append({"agent": agent, "cells": cells})
    return queues, rows


def _cell_name(user_id: int, queue_id: int) -> str:
    return f"skill-{user_id}-{queue_id}"


@supervisor_required
def project_skills(request, key: str):
    """Agents > Queues & Skills: agents as rows, email queues as columns; a skill level assigns the agent. Each cell
    saves on change (htmx); without JavaScript the Save button saves the whole matrix at once."""
    project = _project(key)
    status = 200
    errors, values = {}, {}
    if request.method == "POST":
        current = {
            (s.user_id, s.queue_id): s.level for s in AgentQueueSkill.objects.filter(queue__project=project)
        }
        queues, rows = _matrix(project)
        with transaction.atomic():
            for row in rows:
                for cell in row["cells"]:
                    agent, queue = cell["agent"], cell["queue"]
                    name = _cell_name(agent.pk, queue.pk)
                    if name not in request.POST:
                        continue
                    level = int_or_text(request.POST[name])
                    if level == current.get((agent.pk, queue.pk)):
                        continue
                    try:
                        with transaction.atomic():
                            services.set_skill(project, agent, queue, level, by=request.user)
                    except DomainError as exc:
                        errors[(agent.pk, queue.pk)] = exc.detail
                        values[(agent.pk, queue.pk)] = request.POST[name]
            if errors:
                transaction.set_rollback(True)
        if not errors:
            messages.success(request, "Queues & Skills saved.")
            return redirect("project-skills", key=project.key)
        status = 422
    queues, rows = _matrix(project, errors, values)
    return _project_page(
        request,
        project,
        "skills",
        "projects/skills.html",
        {"queues": queues, "rows": rows, "levels": f"{rules.SKILL_MIN} to {rules.SKILL_MAX}"},
        status,
    )


@supervisor_required
@require_POST
def project_skill_cell(request, key: str, user_id: int, queue_id: int):
    """One cell of the matrix (htmx): set, change or (empty) remove the agent's skill level in the queue."""
    from postdesk.accounts.models import User

    project = _project(key)
    queue = _queue(project, queue_id)
    agent = User.objects.filter(pk=user_id, is_active=True).first()
    if agent is None:
        raise Http404("no such agent")
    raw = request.POST.get(_cell_name(user_id, queue_id), request.POST.get("level", ""))
    cell = {"agent": agent, "queue": queue, "value": raw, "error": None, "saved": False}
    try:
        with transaction.atomic():
            services.set_skill(project, agent, queue, int_or_text(raw), by=request.user)
    except DomainError as exc:
        cell["error"] = exc.detail
        if not request.htmx:
            messages.error(request, f"{agent.username} in {queue.name}: {exc.detail}")
            return redirect("project-skills", key=project.key)
    else:
        level = (
            AgentQueueSkill.objects.filter(user=agent, queue=queue).values_list("level", flat=True).first()
        )
        cell.update(value="" if level is None else level, saved=True)
        if not request.htmx:
            return redirect("project-skills", key=project.key)
    return render(request, "projects/_skill_cell.html", {"project": project, "cell": cell})


# Templates ------------------------------------------------------------------------------------------------------


def _template(project, template_id: int):
    template = project.templates.filter(pk=template_id).first()
    if template is None:
        raise Http404("no such template")
    return template


@supervisor_required
def project_templates(request, key: str):
    """Templates: the list and a new template (name, subject, body, CC, BCC, visibility)."""
    project = _project(key)
    status = 200
    if request.method == "POST":
        form = TemplateForm(request.POST)
        form.is_valid()
        name = form.cleaned_data.get("name", "")
        try:
            with transaction.atomic():
                services.create_template(project, name, form.template_values(), by=request.user)
        except DomainError as exc:
            form.add_domain_error(exc)
            status = exc.status
        else:
            messages.success(request, f"Template {name} created.")
            return redirect("project-templates", key=project.key)
    else:
        form = TemplateForm(initial={"visible_to_agents": True})
    return _project_page(
        request,
        project,
        "templates",
        "projects/templates.html",
        {"form": form, "templates": project.templates.all()},
        status,
    )


@supervisor_required
def project_template_edit(request, key: str, template_id: int):
    project = _project(key)
    template = _template(project, template_id)
    status = 200
    if request.method == "POST":
        form = TemplateForm(request.POST)
        form.is_valid()
        try:
            with transaction.atomic():
                services.upsert_template(project, template.name, form.template_values(), by=request.user)
        except DomainError as exc:
            form.add_domain_error(exc)
            status = exc.status
        else:
            messages.success(request, f"Template {template.name} saved.")
            return redirect("project-templates", key=project.key)
    else:
        form = TemplateForm(initial=TemplateForm.initial_for(template))
    form.fields["name"].disabled = True
    return _project_page(
        request,
        project,
        "templates",
        "projects/template_edit.html",
        {"form": form, "template": template},
        status,
    )


@supervisor_required
@require_POST
def project_template_delete(request, key: str, template_id: int):
    project = _project(key)
    template = _template(project, template_id)
    try:
        with transaction.atomic():
            services.delete_template(template, by=request.user)
    except DomainError as exc:
        form = TemplateForm(initial=TemplateForm.initial_for(template))
        form.fields["name"].disabled = True
        form.add_domain_error(exc)
        return _project_page(
            request,
            project,
            "templates",
            "projects/template_edit.html",
            {"form": form, "template": template},
            exc.status,
        )
    messages.success(request, f"Template {template.name} deleted.")
    return redirect("project-templates", key=project.key)


# Ticket types ---------------------------------------------------------------------------------------------------


def _ticket_types_page(request, project, *, form=None, row_errors=None, row_values=None, status=200):
    row_errors, row_values = row_errors or {}, row_values or {}
    rows = [
        {
            "tt": tt,
            "error": row_errors.get(tt.pk),
            "label": row_values.get(tt.pk, {}).get("label", tt.label),
            "export_value": row_values.get(tt.pk, {}).get("export_value", tt.export_value),
        }
        for tt in project.ticket_types.all()
    ]
    return _project_page(
        request,
        project,
        "ticket-types",
        "projects/ticket_types.html",
        {"rows": rows, "form": form or TicketTypeForm()},
        status,
    )


def _ticket_type(project, pk: int):
    tt = project.ticket_types.filter(pk=pk).first()
    if tt is None:
        raise Http404("no such ticket type")
    return tt


@supervisor_required
def project_ticket_types(request, key: str):
    """Tickets > Custom values: ticket types as a Label and an Export value."""
    project = _project(key)
    if request.method != "POST":
        return _ticket_types_page(request, project)
    form = TicketTypeForm(request.POST)
    form.is_valid()
    d = form.cleaned_data
    try:
        with transaction.atomic():
            services.create_ticket_type(project, d.get("label"), d.get("export_value"), by=request.user)
    except DomainError as exc:
        form.add_domain_error(exc)
        return _ticket_types_page(request, project, form=form, status=exc.status)
    messages.success(request, f"Ticket type {d['label']} added.")
    return redirect("project-ticket-types", key=project.key)


@supervisor_required
@require_POST
def project_ticket_type_edit(request, key: str, pk: int):
    project = _project(key)
    tt = _ticket_type(project, pk)
    label, export_value = request.POST.get("label", ""), request.POST.get("export_value", "")
    try:
        with transaction.atomic():
            services.update_ticket_type(tt, label=label, export_value=export_value, by=request.user)
    except DomainError as exc:
        return _ticket_types_page(
            request,
            project,
            row_errors={pk: exc.detail},
            row_values={pk: {"label": label, "export_value": export_value}},
            status=exc.status,
        )
    messages.success(request, f"Ticket type {tt.label} saved.")
    return redirect("project-ticket-types", key=project.key)


@supervisor_required
@require_POST
def project_ticket_type_delete(request, key: str, pk: int):
    project = _project(key)
    tt = _ticket_type(project, pk)
    try:
        with transaction.atomic():
            services.delete_ticket_type(tt, by=request.user)
    except DomainError as exc:
        return _ticket_types_page(request, project, row_errors={pk: exc.detail}, status=exc.status)
    messages.success(request, f"Ticket type {tt.label} deleted.")
    return redirect("project-ticket-types", key=project.key)


# Cloning --------------------------------------------------------------------------------------------------------


@supervisor_required
def project_clone(request, key: str):
    """A new project with this one's settings, queues, templates and ticket types; none of its mail or tickets."""
    project = _project(key)
    status = 200
    form = CloneForm(request.POST or None, initial={"name": f"{project.name} (copy)"})
    if request.method == "POST" and form.is_valid():
        try:
            clone = services.clone_project(
                project, key=form.cleaned_data["key"], name=form.cleaned_data["name"], by=request.user
            )
        except DomainError as exc:
            form.add_domain_error(exc)
            status = exc.status
        else:
            messages.success(request, f"Project {clone.key} created as a copy of {project.key}.")
            return redirect("project-settings", key=clone.key)
    return _project_page(request, project, "clone", "projects/clone.html", {"form": form}, status)


# Audit log ------------------------------------------------------------------------------------------------------


@supervisor_required
def audit_log(request):
    """Every settings change: who, when, what, before and after. Filter by project and by action."""
    from postdesk.core.models import AuditEvent

    events = AuditEvent.objects.select_related("project").order_by("-at", "-id")
    project = None
    if key := request.GET.get("project"):
        project = _project(key)
        events = events.filter(project=project)
    action = request.GET.get("action", "").strip()
    if action:
        events = events.filter(action__startswith=action)
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    rows = [(e, _shown(e.before), _shown(e.after)) for e in page]
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "projects/audit_log.html",
        {
            "page": page,
            "rows": rows,
            "project": project,
            "projects": Project.objects.all(),
            "action": action,
            "query": query.urlencode(),
            "tab": "audit",
        },
    )


def _shown(values) -> list[tuple[str, str]]:
    """An audit event's before/after as (key, text) pairs: text as typed, everything else as JSON."""
    if not isinstance(values, dict):
        return [("", json.dumps(values))] if values is not None else []
    return [(k, v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)) for k, v in values.items()]


# The agent's own settings ---------------------------------------------------------------------------------------


@agent_required
def my_settings(request):
    """What the supervisors set up for me: my projects, my queues with my skill levels, the templates I can use (with
    the CC/BCC the project lets me see) and the sender accounts I can send from, the default marked."""
    from postdesk.mailboxes.services import default_sender_for
    from postdesk.projects.access import projects_visible_to

    user = request.user
    skills = {s.queue_id: s.level for s in AgentQueueSkill.objects.filter(user=user).select_related("queue")}
    items = []
    for project in projects_visible_to(user).prefetch_related("queues", "templates"):
        queues = [(q, skills[q.pk]) for q in project.queues.all() if q.pk in skills]
        default = default_sender_for(project)
        senders = [
            link.account
            for link in project.sender_links.select_related("account").order_by("account__name")
            if link.account.enabled
        ]
        items.append(
            {
                "project": project,
                "queues": queues,
                "templates": [t for t in project.templates.all() if t.visible_to_agents],
                "senders": senders,
                "default_sender": default,
                "ticket_types": project.ticket_types.all(),
            }
        )
    return render(request, "projects/my_settings.html", {"items": items})
