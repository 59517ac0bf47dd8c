"""Projects in the API (supervisors only): settings, sender accounts, queues, the Queues & Skills matrix, templates,
ticket types, cloning and the audit log. Every write calls projects.services inside one transaction, so the API
validates exactly as the supervisor console and `postdesk apply` do."""

from __future__ import annotations

from typing import Annotated

from django.db import transaction
from ninja import Field, Query, Router, Schema, Status
from pydantic import ConfigDict, StrictBool, StrictInt

from postdesk.accounts.access import require_supervisor
from postdesk.accounts.auth import BrowserSession, TokenAuth
from postdesk.core.errors import NotFound
from postdesk.projects import services
from postdesk.projects.models import Project


class SupervisorToken(TokenAuth):
    """A bearer token of a supervisor: an agent's token is refused with 403 before the request body is read."""

    def authenticate(self, request, token):
        user = super().authenticate(request, token)
        if user is not None:
            require_supervisor(user)
        return user


class SupervisorSession(BrowserSession):
    """A supervisor's browser session (agents: 403)."""

    def authenticate(self, request, key):
        user = super().authenticate(request, key)
        if user is not None:
            require_supervisor(user)
        return user


supervisor_auth = [SupervisorToken(), SupervisorSession()]

router = Router(tags=["projects"], auth=supervisor_auth)


# Schemas ----------------------------------------------------------------------------------------------------------


class In(Schema):
    """A request body: unknown fields are refused (422), never silently ignored."""

    model_config = ConfigDict(extra="forbid")


class QueueOut(Schema):
    name: str
    language: str
    is_default: bool
    agents: dict[str, int]


class TemplateOut(Schema):
    name: str
    subject: str
    body: str
    body_html: str
    cc: list[str]
    bcc: list[str]
    visible_to_agents: bool


class TicketTypeOut(Schema):
    label: str
    export_value: str


class ProjectOut(Schema):
    key: str
    name: str
    email: dict
    sender_accounts: list[str]
    default_sender_account: str | None
    queues: list[QueueOut]
    templates: list[TemplateOut]
    ticket_types: list[TicketTypeOut]


class ProjectSummary(Schema):
    key: str
    name: str


class ProjectIn(In):
    key: str
    name: str


class ProjectPatch(In):
    name: str


class CloneIn(In):
    key: str
    name: str


class SettingsIn(In):
    list_size: StrictInt | None = None
    lock_emails: StrictBool | None = None
    change_pref_user: StrictBool | None = None
    auto_response_template: str | None = None
    agents_create_records: StrictBool | None = None
    search: StrictBool | None = None
    shared_tickets: StrictBool | None = None
    display_address: StrictBool | None = None
    display_template_cc: StrictBool | None = None
    display_template_bcc: StrictBool | None = None
    language_detection: StrictBool | None = None
    email_queue: StrictBool | None = None
    auto_delete_days: StrictInt | None = None


class SenderAccountsIn(In):
    sender_accounts: list[str]
    default_sender_account: str | None = None  # one of them: becomes the default sender account


class QueueIn(In):
    name: str
    language: str


class QueuePatch(In):
    name: str | None = None
    language: str | None = None


class AgentQueuesIn(In):
    queues: dict[str, StrictInt]  # queue name -> skill level; queues left out: the agent leaves them


class SkillIn(In):
    level: StrictInt | None  # null: the agent leaves the queue


class TemplateIn(In):
    subject: str = ""
    body: str = ""
    body_html: str = ""
    cc: list[str] = []
    bcc: list[str] = []
    visible_to_agents: StrictBool = True


class TicketTypeIn(In):
    label: str
    export_value: str


class TicketTypePatch(In):
    label: str | None = None
    export_value: str | None = None


class AuditOut(Schema):
    id: int
    at: str
    actor: str
    action: str
    project: str | None
    object_type: str
    object_id: str
    before: dict | None
    after: dict | None


class AuditPage(Schema):
    items: list[AuditOut]
    next_before: int | None


class AuditQuery(Schema):
    project: str | None = None
    action: str | None = None  # a prefix: "queue." finds queue.create, queue.update, queue.delete
    limit: Annotated[int, Field(ge=1, le=500)] = 100
    before: int | None = None  # page on: the `next_before` of the previous page


# Helpers ----------------------------------------------------------------------------------------------------------


def get_project(key: str) -> Project:
    project = Project.objects.filter(key=key).first()
    if project is None:
        raise NotFound(f"no project {key!r}", field="key")
    return project


def get_user(username: str):
    from postdesk.accounts.models import User

    user = User.objects.filter(username=username, is_active=True).first()
    if user is None:
        raise NotFound(f"no user {username!r}", field="username")
    return user


def queue_out(queue) -> dict:
    return {
        "name": queue.name,
        "language": queue.language,
        "is_default": queue.is_default,
        "agents": dict(queue.skills.values_list("user__username", "level")),
    }


def template_out(template) -> dict:
    return {f: getattr(template, f) for f in ("name", *services.TEMPLATE_FIELDS)}


def project_out(project: Project) -> dict:
    from postdesk.mailboxes.services import default_sender_for

    project.refresh_from_db()
    skills: dict[int, dict[str, int]] = {}
    for queue_id, username, level in project.queues.values_list(
        "id", "skills__user__username", "skills__level"
    ):
        if username:
            skills.setdefault(queue_id, {})[username] = level
    default = default_sender_for(project)
    return {
        "key": project.key,
        "name": project.name,
        "email": services.settings_of(project),
        "sender_accounts": sorted(
            link.account.name for link in project.sender_links.select_related("account")
        ),
        "default_sender_account": default.name if default else None,
        "queues": [
            {
                "name": q.name,
                "language": q.language,
                "is_default": q.is_default,
                "agents": skills.get(q.pk, {}),
            }
            for q in project.queues.all()
        ],
        "templates": [template_out(t) for t in project.templates.all()],
        "ticket_types": list(project.ticket_types.values("label", "export_value")),
    }


def audit_out(event) -> dict:
    return {
        "id": event.pk,
        "at": event.at.isoformat(),
        "actor": event.actor_name,
        "action": event.action,
        "project": event.project.key if event.project_id else None,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "before": event.before,
        "after": event.after,
    }


# Projects ---------------------------------------------------------------------------------------------------------


@router.get("/projects", response=list[ProjectSummary], summary="Every project")
def list_projects(request):
    require_supervisor(request.auth)
    return list(Project.objects.values("key", "name"))


@router.post("/projects", response={201: ProjectOut}, summary="Create a project (with its default queue)")
def create_project(request, payload: ProjectIn):
    require_supervisor(request.auth)
    with transaction.atomic():
        project = services.create_project(key=payload.key, name=payload.name, by=request.auth)
    return Status(201, project_out(project))


@router.get(
    "/projects/{key}", response=ProjectOut, summary="A project's settings, queues, templates, ticket types"
)
def read_project(request, key: str):
    require_supervisor(request.auth)
    return project_out(get_project(key))


@router.patch("/projects/{key}", response=ProjectOut, summary="Rename a project")
def patch_project(request, key: str, payload: ProjectPatch):
    require_supervisor(request.auth)
    project = get_project(key)
    with transaction.atomic():
        services.rename_project(project, payload.name, by=request.auth)
    return project_out(project)


@router.patch("/projects/{key}/settings", response=ProjectOut, summary="Change a project's email settings")
def patch_settings(request, key: str, payload: SettingsIn):
    require_supervisor(request.auth)
    project = get_project(key)
    with transaction.atomic():
        services.update_settings(project, payload.model_dump(exclude_unset=True), by=request.auth)
    return project_out(project)


@router.put(
    "/projects/{key}/sender-accounts",
    response=ProjectOut,
    summary="The SMTP accounts offered to the project's agents, and the default",
)
def put_sender_accounts(request, key: str, payload: SenderAccountsIn):
    from postdesk.mailboxes.services import account_named, accounts_named

    require_supervisor(request.auth)
    project = get_project(key)
    with transaction.atomic():
        accounts = accounts_named(payload.sender_accounts, "sender_accounts")
        default = None
        if payload.default_sender_account:
            default = account_named(payload.default_sender_account, "default_sender_account")
        services.set_sender_accounts(project, accounts, by=request.auth, default=default)
    return project_out(project)


@router.post(
    "/projects/{key}/clone", response={201: ProjectOut}, summary="A new project with the same settings"
)
def clone(request, key: str, payload: CloneIn):
    require_supervisor(request.auth)
    project = services.clone_project(get_project(key), key=payload.key, name=payload.name, by=request.auth)
    return Status(201, project_out(project))


# Queues and skills ------------------------------------------------------------------------------------------------


@router.get("/projects/{key}/queues", response=list[QueueOut], summary="A project's email queues")
def list_queues(request, key: str):
    require_supervisor(request.auth)
    return [queue_out(q) for q in get_project(key).queues.all()]


@router.post("/projects/{key}/queues", response={201: QueueOut}, summary="Create a language queue")
def create_queue(request, key: str, payload: QueueIn):
    require_supervisor(request.auth)
    project = get_project(key)
    with transaction.atomic():
        queue = services.create_queue(project, name=payload.name, language=payload.language, by=request.auth)
    return Status(201, queue_out(queue))


@router.patch(
    "/projects/{key}/queues/{name}", response=QueueOut, summary="Rename a queue or change its language"
)
def patch_queue(request, key: str, name: str, payload: QueuePatch):
    require_supervisor(request.auth)
    project = get_project(key)
    with transaction.atomic():
        queue = services.get_queue(project, name)
        services.update_queue(queue, name=payload.name, language=payload.language, by=request.auth)
    return queue_out(queue)


@router.delete(
    "/projects/{key}/queues/{name}", response={204: None}, summary="Delete a language queue (not the default)"
)
def delete_queue(request, key: str, name: str):
    require_supervisor(request.auth)
    project = get_project(key)
    with transaction.atomic():
        services.delete_queue(services.get_queue(project, name), by=request.auth)
    return Status(204, None)


@router.put(
    "/projects/{key}/agents/{username}",
    response=ProjectOut,
    summary="An agent's queues and skill levels in the project, exactly these",
)
def put_agent_queues(request, key: str, username: str, payload: AgentQueuesIn):
    require_supervisor(request.auth)
    project = get_project(key)
    with transaction.atomic():
        services.set_agent_skills(project, get_user(username), payload.queues, by=request.auth)
    return project_out(project)


@router.put(
    "/projects/{key}/queues/{name}/agents/{username}",
    response=QueueOut,
    summary="One cell of the Queues & Skills matrix: a level assigns the agent, null removes them",
)
def put_skill(request, key: str, name: str, username: str, payload: SkillIn):
    require_supervisor(request.auth)
    project = get_project(key)
    with transaction.atomic():
        queue = services.get_queue(project, name)
        services.set_skill(project, get_user(username), queue, payload.level, by=request.auth)
    return queue_out(queue)


# Templates and ticket types -----------------------------------------------------------------------------------


@router.get("/projects/{key}/templates", response=list[TemplateOut], summary="A project's email templates")
def list_templates(request, key: str):
    require_supervisor(request.auth)
    return [template_out(t) for t in get_project(key).templates.all()]


@router.put(
    "/projects/{key}/templates/{name}",
    response={200: TemplateOut, 201: TemplateOut},
    summary="Create or replace a template",
)
def put_template(request, key: str, name: str, payload: TemplateIn):
    require_supervisor(request.auth)
    project = get_project(key)
    with transaction.atomic():
        created = not project.templates.filter(name=name).exists()
        services.upsert_template(project, name, payload.model_dump(), by=request.auth)
    return Status(201 if created else 200, template_out(project.templates.get(name=name.strip())))


@router.delete("/projects/{key}/templates/{name}", response={204: None}, summary="Delete a template")
def delete_template(request, key: str, name: str):
    require_supervisor(request.auth)
    project = get_project(key)
    with transaction.atomic():
        services.delete_template(services.get_template(project, name), by=request.auth)
    return Status(204, None)


@router.get("/projects/{key}/ticket-types", response=list[TicketTypeOut], summary="A project's ticket types")
def list_ticket_types(request, key: str):
    require_supervisor(request.auth)
    return list(get_project(key).ticket_types.values("label", "export_value"))


@router.post(
    "/projects/{key}/ticket-types", response={201: TicketTypeOut}, summary="Add a ticket type (custom value)"
)
def create_ticket_type(request, key: str, payload: TicketTypeIn):
    require_supervisor(request.auth)
    project = get_project(key)
    with transaction.atomic():
        tt = services.create_ticket_type(project, payload.label, payload.export_value, by=request.auth)
    return Status(201, {"label": tt.label, "export_value": tt.export_value})


@router.patch(
    "/projects/{key}/ticket-types/{export_value}",
    response=TicketTypeOut,
    summary="Change a ticket type's label or export value",
)
def patch_ticket_type(request, key: str, export_value: str, payload: TicketTypePatch):
    require_supervisor(request.auth)
    project = get_project(key)
    with transaction.atomic():
        tt = services.get_ticket_type(project, export_value)
        services.update_ticket_type(
            tt, label=payload.label, export_value=payload.export_value, by=request.auth
        )
    return {"label": tt.label, "export_value": tt.export_value}


@router.delete(
    "/projects/{key}/ticket-types/{export_value}",
    response={204: None},
    summary="Delete a ticket type no ticket uses",
)
def delete_ticket_type(request, key: str, export_value: str):
    require_supervisor(request.auth)
    project = get_project(key)
    with transaction.atomic():
        services.delete_ticket_type(services.get_ticket_type(project, export_value), by=request.auth)
    return Status(204, None)


# Audit log ------------------------------------------------------------------------------------------------------


@router.get("/audit", response=AuditPage, summary="The audit log of settings changes, newest first")
def audit_log(request, filters: Query[AuditQuery]):
    from postdesk.core.models import AuditEvent

    require_supervisor(request.auth)
    events = AuditEvent.objects.select_related("project")
    if filters.project:
        events = events.filter(project=get_project(filters.project))
    if filters.action:
        events = events.filter(action__startswith=filters.action)
    if filters.before:
        events = events.filter(pk__lt=filters.before)
    rows = list(events.order_by("-id")[: filters.limit + 1])
    more = len(rows) > filters.limit
    rows = rows[: filters.limit]
    return {"items": [audit_out(e) for e in rows], "next_before": rows[-1].pk if more else None}
