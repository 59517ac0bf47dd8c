"""Projects in the API (supervisors): settings, queues, templates, ticket types; cloning; deleting a language queue."""

from __future__ import annotations

from django.db import transaction
from ninja import Router, Schema

from postdesk.accounts.access import require_supervisor
from postdesk.core.errors import NotFound
from postdesk.projects import services
from postdesk.projects.models import Project

router = Router(tags=["projects"])


class QueueOut(Schema):
    name: str
    language: str
    is_default: bool
    agents: dict[str, int]


class TemplateOut(Schema):
    name: str
    subject: str
    body: str
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


class CloneIn(Schema):
    key: str
    name: str


class SettingsIn(Schema):
    list_size: int | None = None
    lock_emails: bool | None = None
    change_pref_user: bool | None = None
    auto_response_template: str | None = None
    agents_create_records: bool | None = None
    search: bool | None = None
    shared_tickets: bool | None = None
    display_address: bool | None = None
    display_template_cc: bool | None = None
    display_template_bcc: bool | None = None
    language_detection: bool | None = None
    email_queue: bool | None = None
    auto_delete_days: int | None = None


def get_project(key: str) -> Project:
    project = Project.objects.filter(key=key).first()
    if project is None:
        raise NotFound(f"no project {key!r}", field="key")
    return project


def project_out(project: Project) -> dict:
    from postdesk.mailboxes.services import default_sender_for

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
        "templates": list(
            project.templates.values("name", "subject", "body", "cc", "bcc", "visible_to_agents")
        ),
        "ticket_types": list(project.ticket_types.values("label", "export_value")),
    }


@router.get(
    "/projects/{key}", response=ProjectOut, summary="A project's settings, queues, templates, ticket types"
)
def read_project(request, key: str):
    require_supervisor(request.auth)
    return project_out(get_project(key))


@router.patch("/projects/{key}/settings", response=ProjectOut, summary="Change a project's email settings")
def patch_settings(request, key: str, payload: SettingsIn):
    require_supervisor(request.auth)
    project = get_project(key)
    with transaction.atomic():
        services.update_settings(project, payload.dict(exclude_unset=True), by=request.auth)
    return project_out(project)


@router.post(
    "/projects/{key}/clone", response={201: ProjectOut}, summary="A new project with the same settings"
)
def clone(request, key: str, payload: CloneIn):
    require_supervisor(request.auth)
    project = services.clone_project(get_project(key), key=payload.key, name=payload.name, by=request.auth)
    return 201, project_out(project)


@router.delete(
    "/projects/{key}/queues/{name}", response={204: None}, summary="Delete a language queue (not the default)"
)
def delete_queue(request, key: str, name: str):
    require_supervisor(request.auth)
    project = get_project(key)
    with transaction.atomic():
        services.delete_queue(services.get_queue(project, name), by=request.auth)
    return 204, None
