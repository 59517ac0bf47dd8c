"""The only place that changes projects, their settings, queues, skills, templates, ticket types and sender accounts.
Every change is validated by projects.rules and written to the audit log. Services never commit on their own: callers
run them inside one transaction (a request, a job, or `postdesk apply`)."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from postdesk.core.errors import Conflict, Invalid, NotFound
from postdesk.core.services import audit, changes
from postdesk.projects import rules
from postdesk.projects.models import (
    AgentQueueSkill,
    Project,
    ProjectMember,
    Queue,
    SenderAccount,
    Template,
    TicketType,
)

DEFAULT_QUEUE_NAME = "Default"


def settings_of(project: Project) -> dict:
    values = {name: getattr(project, name) for name in rules.SETTING_FIELDS}
    values["auto_response_template"] = (
        project.auto_response_template.name if project.auto_response_template_id else None
    )
    return values


def create_project(*, key: str, name: str, by=None, default_queue_name: str = DEFAULT_QUEUE_NAME) -> Project:
    rules.check_project_key(key)
    if not name or not name.strip():
        raise Invalid("must not be empty", field="name")
    if Project.objects.filter(key=key).exists():
        raise Conflict(f"a project with key {key!r} exists", field="key")
    project = Project.objects.create(key=key, name=name.strip())
    Queue.objects.create(project=project, name=default_queue_name, is_default=True)
    audit("project.create", actor=by, project=project, obj=project, after={"key": key, "name": name})
    return project


def rename_project(project: Project, name: str, by=None) -> list[str]:
    if not name or not name.strip():
        raise Invalid("must not be empty", field="name")
    if project.name == name:
        return []
    audit(
        "project.rename",
        actor=by,
        project=project,
        obj=project,
        before={"name": project.name},
        after={"name": name},
    )
    old, project.name = project.name, name
    project.save(update_fields=["name"])
    return [f"~ project {project.key}: name {old!r} -> {name!r}"]


def update_settings(project: Project, values: dict, by=None, prefix: str = "") -> list[str]:
    """Change some of the project's email settings. `auto_response_template` is a template name or None.
    The whole resulting set of settings is checked against every rule before anything is saved."""
    p = f"{prefix}." if prefix else ""
    unknown = set(values) - set(rules.SETTING_FIELDS) - {"auto_response_template"}
    if unknown:
        raise Invalid(f"unknown setting(s): {', '.join(sorted(unknown))}", field=f"{p}{sorted(unknown)[0]}")
    before = settings_of(project)
    after = {**before, **values}
    rules.check_settings(after, prefix)
    template = None
    if after["auto_response_template"] is not None:
        template = project.templates.filter(name=after["auto_response_template"]).first()
        if template is None:
            raise Invalid(
                f"no template named {after['auto_response_template']!r} in project {project.key}",
                field=f"{p}auto_response_template",
            )
    old, new = changes(before, after)
    if not new:
        return []
    for name in rules.SETTING_FIELDS:
        setattr(project, name, after[name])
    project.auto_response_template = template
    project.save()
    audit("project.settings", actor=by, project=project, obj=project, before=old, after=new)
    return [f"~ project {project.key}: {k} {old[k]!r} -> {new[k]!r}" for k in new]


# Queues ---------------------------------------------------------------------------------------------------------


def create_queue(project: Project, *, name: str, language: str, by=None) -> Queue:
    name = (name or "").strip()
    if not name:
        raise Invalid("a queue needs a name", field="name")
    language = rules.check_language(language)
    if project.queues.filter(name=name).exists():
        raise Conflict(f"a queue named {name!r} exists in project {project.key}", field="name")
    if project.queues.filter(language=language, is_default=False).exists():
        raise Conflict(
            f"project {project.key} already has a queue for language {language!r}", field="language"
        )
    queue = Queue.objects.create(project=project, name=name, language=language)
    audit("queue.create", actor=by, project=project, obj=queue, after={"name": name, "language": language})
    return queue


def update_queue(queue: Queue, *, name: str | None = None, language: str | None = None, by=None) -> list[str]:
    """Rename a queue (the default queue too) or change a language queue's language."""
    out, before, after = [], {}, {}
    if name is not None and name.strip() != queue.name:
        name = name.strip()
        if not name:
            raise Invalid("a queue needs a name", field="name")
        if Queue.objects.filter(project_id=queue.project_id, name=name).exclude(pk=queue.pk).exists():
            raise Conflict(f"a queue named {name!r} exists", field="name")
        before["name"], after["name"] = queue.name, name
        out.append(f"~ queue {queue.name!r} renamed {name!r}")
        queue.name = name
    if language is not None and not queue.is_default:
        language = rules.check_language(language)
        if language != queue.language:
            if (
                Queue.objects.filter(project_id=queue.project_id, language=language, is_default=False)
                .exclude(pk=queue.pk)
                .exists()
            ):
                raise Conflict(f"another queue has language {language!r}", field="language")
            before["language"], after["language"] = queue.language, language
            out.append(f"~ queue {queue.name!r}: language {queue.language} -> {language}")
            queue.language = language
    if out:
        queue.save()
        audit("queue.update", actor=by, project=queue.project, obj=queue, before=before, after=after)
    return out


def delete_queue(queue: Queue, by=None) -> None:
    """Delete a language queue; its emails move to the default queue. The default queue is never deleted (409)."""
    if queue.is_default:
        raise Conflict("the default queue can be renamed but not deleted", field="queue")
    from postdesk.emails.models import Email

    default = Queue.objects.get(project_id=queue.project_id, is_default=True)
    Email.objects.filter(queue=queue).update(queue=default)
    audit(
        "queue.delete",
        actor=by,
        project=queue.project,
        obj=queue,
        before={"name": queue.name, "language": queue.language},
    )
    queue.delete()


def get_queue(project: Project, name: str) -> Queue:
    queue = project.queues.filter(name=name).first()
    if queue is None:
        raise NotFound(f"no queue named {name!r} in project {project.key}", field="queue")
    return queue


# Agents and skills ------------------------------------------------------------------------------------------------


def add_member(project: Project, user, by=None) -> bool:
    _, created = ProjectMember.objects.get_or_create(project=project, user=user)
    if created:
        audit("project.member.add", actor=by, project=project, obj=user, after={"username": user.username})
    return created


def set_skill(project: Project, user, queue: Queue, level: int | None, by=None) -> str | None:
    """Set (or with None remove) an agent's skill level in a queue; a level makes the agent a member of the queue
    and of the project."""
    if queue.project_id != project.pk:
        raise Invalid("the queue belongs to another project", field="queue")
    current = AgentQueueSkill.objects.filter(user=user, queue=queue).first()
    if level is None:
        if current is None:
            return None
        current.delete()
        audit(
            "skill.remove",
            actor=by,
            project=project,
            obj=user,
            before={"queue": queue.name, "level": current.level},
        )
        return f"- {user.username} left queue {queue.name!r}"
    rules.check_skill_level(level)
    add_member(project, user, by=by)
    if current is None:
        AgentQueueSkill.objects.create(user=user, queue=queue, level=level)
        audit("skill.set", actor=by, project=project, obj=user, after={"queue": queue.name, "level": level})
        return f"+ {user.username} in queue {queue.name!r} (level {level})"
    if current.level != level:
        audit(
            "skill.set",
            actor=by,
            project=project,
            obj=user,
            before={"level": current.level},
            after={"queue": queue.name, "level": level},
        )
        current.level = level
        current.save(update_fields=["level"])
        return f"~ {user.username} in queue {queue.name!r}: level {level}"
    return None


def set_agent_skills(project: Project, user, levels: dict[str, int], by=None) -> list[str]:
    """Make the agent's queue levels in this project exactly `levels` (queue name -> level)."""
    out = []
    queues = {q.name: q for q in project.queues.all()}
    for name, level in levels.items():
        if name not in queues:
            raise Invalid(f"no queue named {name!r} in project {project.key}", field=f"queues.{name}")
        rules.check_skill_level(level, f"queues.{name}")
    add_member(project, user, by=by)
    for queue in queues.values():
        line = set_skill(project, user, queue, levels.get(queue.name), by=by)
        if line:
            out.append(line)
    return out


# Templates, ticket types, sender accounts ------------------------------------------------------------------------

TEMPLATE_FIELDS = ("subject", "body", "body_html", "cc", "bcc", "visible_to_agents")


def upsert_template(project: Project, name: str, values: dict, by=None) -> list[str]:
    from postdesk.outbound.compose import HeaderInjectionError, validate_address, validate_header_value

    name = (name or "").strip()
    if not name:
        raise Invalid("a template needs a name", field="name")
    try:
        validate_header_value("subject", values.get("subject", "") or "")
        for field in ("cc", "bcc"):
            for i, address in enumerate(values.get(field) or []):
                validate_address(f"{field}.{i}", address)
    except HeaderInjectionError as exc:
        raise Invalid(str(exc), field=exc.field)
    template = project.templates.filter(name=name).first()
    if template is None:
        template = Template.objects.create(
            project=project, name=name, **{k: v for k, v in values.items() if k in TEMPLATE_FIELDS}
        )
        audit("template.create", actor=by, project=project, obj=template, after={"name": name, **values})
        return [f"+ template {name!r} in project {project.key}"]
    before = {k: getattr(template, k) for k in TEMPLATE_FIELDS if k in values}
    old, new = changes(before, {k: v for k, v in values.items() if k in TEMPLATE_FIELDS})
    if not new:
        return []
    for k, v in new.items():
        setattr(template, k, v)
    template.save()
    audit("template.update", actor=by, project=project, obj=template, before=old, after=new)
    return [f"~ template {name!r}: {', '.join(new)}"]


def delete_template(template: Template, by=None) -> None:
    audit("template.delete", actor=by, project=template.project, obj=template, before={"name": template.name})
    template.delete()


def upsert_ticket_type(project: Project, label: str, export_value: str, by=None) -> list[str]:
    label, export_value = (label or "").strip(), (export_value or "").strip()
    if not label:
        raise Invalid("a ticket type needs a label", field="label")
    if not export_value:
        raise Invalid("a ticket type needs an export value", field="export_value")
    current = project.ticket_types.filter(export_value=export_value).first()
    if current is None:
        if project.ticket_types.filter(label=label).exists():
            raise Conflict(f"a ticket type labelled {label!r} exists", field="label")
        tt = TicketType.objects.create(project=project, label=label, export_value=export_value)
        audit(
            "ticket_type.create",
            actor=by,
            project=project,
            obj=tt,
            after={"label": label, "export_value": export_value},
        )
        return [f"+ ticket type {label!r} ({export_value})"]
    if current.label != label:
        if project.ticket_types.filter(label=label).exclude(pk=current.pk).exists():
            raise Conflict(f"a ticket type labelled {label!r} exists", field="label")
        audit(
            "ticket_type.update",
            actor=by,
            project=project,
            obj=current,
            before={"label": current.label},
            after={"label": label},
        )
        current.label = label
        current.save(update_fields=["label"])
        return [f"~ ticket type {export_value}: label {label!r}"]
    return []


def set_sender_accounts(project: Project, accounts: list, by=None) -> list[str]:
    """The SMTP accounts shown to the project's agents, exactly these."""
    from postdesk.mailboxes.models import Protocol

    for i, account in enumerate(accounts):
        if account.protocol != Protocol.SMTP:
            raise Invalid(
                f"{account.name!r} is a {account.protocol} account; sender accounts are SMTP accounts",
                field=f"sender_accounts.{i}",
            )
    wanted = {a.pk for a in accounts}
    current = set(project.sender_links.values_list("account_id", flat=True))
    if wanted == current:
        return []
    SenderAccount.objects.filter(project=project).exclude(account_id__in=wanted).delete()
    for account in accounts:
        if account.pk not in current:
            SenderAccount.objects.create(project=project, account=account)
    names = sorted(a.name for a in accounts)
    audit("project.sender_accounts", actor=by, project=project, obj=project, after={"accounts": names})
    return [f"~ project {project.key}: sender accounts {names}"]


# Cloning --------------------------------------------------------------------------------------------------------


def clone_project(source: Project, *, key: str, name: str, by=None) -> Project:
    """A new project with the source's settings, queues, templates, ticket types, dispositions, sender accounts and
    agent skills; none of its mail, tickets or records."""
    with transaction.atomic():
        try:
            project = create_project(key=key, name=name, by=by, default_queue_name=source.default_queue.name)
        except IntegrityError:
            raise Conflict(f"a project with key {key!r} exists", field="key")
        for field in rules.SETTING_FIELDS:
            setattr(project, field, getattr(source, field))
        queue_map = {source.default_queue.pk: project.default_queue}
        for q in source.queues.filter(is_default=False):
            queue_map[q.pk] = Queue.objects.create(project=project, name=q.name, language=q.language)
        template_map = {}
        for t in source.templates.all():
            template_map[t.pk] = Template.objects.create(
                project=project, name=t.name, **{f: getattr(t, f) for f in TEMPLATE_FIELDS}
            )
        project.auto_response_template = template_map.get(source.auto_response_template_id)
        project.save()
        for tt in source.ticket_types.all():
            TicketType.objects.create(project=project, label=tt.label, export_value=tt.export_value)
        for d in source.dispositions.all():
            project.dispositions.create(
                name=d.name, template=template_map.get(d.template_id), sender_account=d.sender_account
            )
        for link in source.sender_links.all():
            SenderAccount.objects.create(project=project, account_id=link.account_id)
        for member in ProjectMember.objects.filter(project=source):
            ProjectMember.objects.create(project=project, user_id=member.user_id)
        for skill in AgentQueueSkill.objects.filter(queue__project=source):
            AgentQueueSkill.objects.create(
                user_id=skill.user_id, queue=queue_map[skill.queue_id], level=skill.level
            )
        for f in source.record_fields.all():
            project.record_fields.create(name=f.name, label=f.label, personal_data=f.personal_data)
        audit("project.clone", actor=by, project=project, obj=project, after={"from": source.key})
    return project
