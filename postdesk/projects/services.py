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
    name = rules.check_name(name, "name", max_length=200)
    default_queue_name = rules.check_name(
        default_queue_name, "default_queue", max_length=100, empty="a queue needs a name"
    )
    if Project.objects.filter(key=key).exists():
        raise Conflict(f"a project with key {key!r} exists", field="key")
    project = Project.objects.create(key=key, name=name)
    Queue.objects.create(project=project, name=default_queue_name, is_default=True)
    audit("project.create", actor=by, project=project, obj=project, after={"key": key, "name": name})
    return project


def rename_project(project: Project, name: str, by=None) -> list[str]:
    name = rules.check_name(name, "name", max_length=200)
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
    name = rules.check_name(name, "name", max_length=100, empty="a queue needs a name")
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
    if name is not None and str(name).strip() != queue.name:
        name = rules.check_name(name, "name", max_length=100, empty="a queue needs a name")
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

    name = rules.check_name(name, "name", max_length=100, empty="a template needs a name")
    subject = values.get("subject", "") or ""
    if len(subject) > Template._meta.get_field("subject").max_length:
        raise Invalid(
            f"must be at most {Template._meta.get_field('subject').max_length} characters", field="subject"
        )
    try:
        validate_header_value("subject", subject)
        for field in ("cc", "bcc"):
            for i, address in enumerate(values.get(field) or []):
                validate_address(f"{field}.{i}", address)
    except HeaderInjectionError as exc:
        raise Invalid(exc.reason, field=exc.field)
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


def create_template(project: Project, name: str, values: dict, by=None) -> Template:
    """A new template; a template of that name is a conflict (upsert_template replaces it instead)."""
    name = rules.check_name(name, "name", max_length=100, empty="a template needs a name")
    if project.templates.filter(name=name).exists():
        raise Conflict(f"a template named {name!r} exists in project {project.key}", field="name")
    upsert_template(project, name, values, by=by)
    return project.templates.get(name=name)


def delete_template(template: Template, by=None) -> None:
    """Delete a template; the project's automatic response template is refused (choose another one first)."""
    project = template.project
    if project.auto_response_template_id == template.pk:
        raise Conflict(
            f"{template.name!r} is the project's automatic response; choose another one (or none) first",
            field="template",
        )
    audit("template.delete", actor=by, project=template.project, obj=template, before={"name": template.name})
    template.delete()


def upsert_ticket_type(project: Project, label: str, export_value: str, by=None) -> list[str]:
    label = rules.check_name(label, "label", max_length=100, empty="a ticket type needs a label")
    export_value = rules.check_name(
        export_value, "export_value", max_length=100, empty="a ticket type needs an export value"
    )
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


def create_ticket_type(project: Project, label: str, export_value: str, by=None) -> TicketType:
    """A new ticket type; an existing export value is a conflict (upsert_ticket_type relabels it instead)."""
    export_value = rules.check_name(
        export_value, "export_value", max_length=100, empty="a ticket type needs an export value"
    )
    if project.ticket_types.filter(export_value=export_value).exists():
        raise Conflict(f"a ticket type with export value {export_value!r} exists", field="export_value")
    upsert_ticket_type(project, label, export_value, by=by)
    return project.ticket_types.get(export_value=export_value)


def set_sender_accounts(project: Project, accounts: list, by=None, *, default=None) -> list[str]:
    """The SMTP accounts shown to the project's agents, exactly these. `default`, one of them, becomes this
    project's default sender account (without one, the accounts' own Default setting decides)."""
    from postdesk.mailboxes.models import Protocol

    for i, account in enumerate(accounts):
        if account.protocol != Protocol.SMTP:
            raise Invalid(
                f"{account.name!r} is a {account.protocol} account; sender accounts are SMTP accounts",
                field=f"sender_accounts.{i}",
            )
    if default is not None and default.pk not in {a.pk for a in accounts}:
        raise Invalid(
            f"the default sender account {default.name!r} must be one of the selected sender accounts",
            field="default_sender_account",
        )
    out = []
    wanted = {a.pk for a in accounts}
    current = set(project.sender_links.values_list("account_id", flat=True))
    if wanted != current:
        before_names = sorted(project.sender_links.values_list("account__name", flat=True))
        SenderAccount.objects.filter(project=project).exclude(account_id__in=wanted).delete()
        for account in accounts:
            if account.pk not in current:
                SenderAccount.objects.create(project=project, account=account)
        names = sorted(a.name for a in accounts)
        audit("project.sender_accounts", actor=by, project=project, obj=project, before={"accounts": before_names},
              after={"accounts": names})
        out.append(f"~ project {project.key}: sender accounts {names}")
    if default is not None:
        was = project.sender_links.filter(is_default=True).values_list("account__name", flat=True).first()
        if was != default.name:
            SenderAccount.objects.filter(project=project).update(is_default=False)
            SenderAccount.objects.filter(project=project, account=default).update(is_default=True)
            audit("project.default_sender", actor=by, project=project, obj=project, before={"default": was},
                  after={"default": default.name})
            out.append(f"~ project {project.key}: default sender account {default.name}")
    return out


def set_template_visibility(project: Project, visible: set[str], by=None) -> list[str]:
    """General settings > Email templates: exactly the named templates are visible to the project's agents."""
    out = []
    for template in project.templates.all():
        out += upsert_template(project, template.name, {"visible_to_agents": template.name in visible}, by=by)
    return out


def get_template(project: Project, name: str) -> Template:
    template = project.templates.filter(name=name).first()
    if template is None:
        raise NotFound(f"no template named {name!r} in project {project.key}", field="template")
    return template


def get_ticket_type(project: Project, export_value: str) -> TicketType:
    tt = project.ticket_types.filter(export_value=export_value).first()
    if tt is None:
        raise NotFound(f"no ticket type with export value {export_value!r}", field="ticket_type")
    return tt


def update_ticket_type(
    tt: TicketType, *, label: str | None = None, export_value: str | None = None, by=None
) -> list[str]:
    """Change a ticket type's label and/or export value (tickets keep their type)."""
    before, after = {}, {}
    if label is not None:
        label = rules.check_name(label, "label", max_length=100, empty="a ticket type needs a label")
        if label != tt.label:
            if TicketType.objects.filter(project_id=tt.project_id, label=label).exclude(pk=tt.pk).exists():
                raise Conflict(f"a ticket type labelled {label!r} exists", field="label")
            before["label"], after["label"] = tt.label, label
    if export_value is not None:
        export_value = rules.check_name(
            export_value, "export_value", max_length=100, empty="a ticket type needs an export value"
        )
        if export_value != tt.export_value:
            if (
                TicketType.objects.filter(project_id=tt.project_id, export_value=export_value)
                .exclude(pk=tt.pk)
                .exists()
            ):
                raise Conflict(
                    f"a ticket type with export value {export_value!r} exists", field="export_value"
                )
            before["export_value"], after["export_value"] = tt.export_value, export_value
    if not after:
        return []
    for k, v in after.items():
        setattr(tt, k, v)
    tt.save()
    audit("ticket_type.update", actor=by, project=tt.project, obj=tt, before=before, after=after)
    return [f"~ ticket type {tt.export_value}: {', '.join(after)}"]


def delete_ticket_type(tt: TicketType, by=None) -> None:
    """Delete a ticket type that no ticket uses (a used one would silently leave tickets without a type: 409)."""
    from postdesk.tickets.models import Ticket

    used = Ticket.objects.filter(type=tt).count()
    if used:
        raise Conflict(
            f"{used} ticket(s) have the type {tt.label!r}; it cannot be deleted", field="ticket_type"
        )
    audit(
        "ticket_type.delete",
        actor=by,
        project=tt.project,
        obj=tt,
        before={"label": tt.label, "export_value": tt.export_value},
    )
    tt.delete()


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
