"""`postdesk apply FILE`: declarative configuration (users, accounts, projects), validated whole before anything is
written, applied in one transaction, idempotent, reporting what changed.

Lists are applied by name: listed objects are created or brought up to date; objects missing from the file are left
alone (nothing that may carry mail is deleted by a configuration file). Two lists are exact: a project's
`sender_accounts`, and the queue levels of each agent listed under `agents`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import yaml
from django.db import transaction
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError, field_validator

from postdesk.core.errors import DomainError, Invalid
from postdesk.projects import rules


class ConfigFileError(Exception):
    """The file is invalid: the message names the field (e.g. `projects[0].email.list_size`)."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class UserSpec(Strict):
    username: Annotated[str, Field(min_length=1, max_length=150, pattern=r"^[\w.@+-]+$")]
    password: Annotated[str, Field(min_length=8)] | None = None
    role: Literal["agent", "supervisor"]


class AccountSpec(Strict):
    name: str
    protocol: Literal["forwarding", "smtp", "mass"]
    address: str
    project: str | None = None
    display_name: str = ""
    default: StrictBool = False
    enabled: StrictBool = True
    host: str | None = None
    port: StrictInt | None = None
    security: Literal["starttls", "tls", "none"] | None = None
    auth: Literal["login", "plain", "xoauth2", "none"] | None = None
    username: str | None = None
    password: str | None = None
    tls_verify: StrictBool = True
    ca_file: str | None = None
    max_per_second: StrictInt | None = None
    oauth_provider: str | None = None
    oauth_client_id: str | None = None
    oauth_client_secret: str | None = None
    oauth_authorize_url: str | None = None
    oauth_token_url: str | None = None
    oauth_scope: str | None = None
    domain: str | None = None

    @field_validator("project", mode="before")
    @classmethod
    def _key_as_text(cls, v):
        return None if v is None else str(v)


class EmailSettingsSpec(Strict):
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


class TemplateSpec(Strict):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    subject: str = ""
    body: str = ""
    body_html: str = ""
    cc: list[str] = []
    bcc: list[str] = []
    visible_to_agents: StrictBool = True


class TicketTypeSpec(Strict):
    label: Annotated[str, Field(min_length=1, max_length=100)]
    export_value: Annotated[str, Field(min_length=1, max_length=100)]


class LanguageQueueSpec(Strict):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    language: str


class QueuesSpec(Strict):
    default_name: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    languages: list[LanguageQueueSpec] = []


class AgentSpec(Strict):
    username: str
    queues: dict[str, StrictInt] = {}


class WebhookSpec(Strict):
    url: str
    events: list[Literal["email", "ticket"]]
    secret: Annotated[str, Field(min_length=16)]
    enabled: StrictBool = True


class DispositionSpec(Strict):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    template: str | None = None
    sender_account: str | None = None


class RecordFieldSpec(Strict):
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
    label: str = ""
    personal_data: StrictBool = False


class ProjectSpec(Strict):
    key: str
    name: Annotated[str, Field(min_length=1, max_length=200)]
    email: EmailSettingsSpec = EmailSettingsSpec()
    sender_accounts: list[str] | None = None
    templates: list[TemplateSpec] = []
    ticket_types: list[TicketTypeSpec] = []
    queues: QueuesSpec = QueuesSpec()
    agents: list[AgentSpec] = []
    webhooks: list[WebhookSpec] = []
    dispositions: list[DispositionSpec] = []
    record_fields: list[RecordFieldSpec] = []

    @field_validator("key", mode="before")
    @classmethod
    def _key_as_text(cls, v):
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v


class ConfigSpec(Strict):
    users: list[UserSpec] = []
    accounts: list[AccountSpec] = []
    projects: list[ProjectSpec] = []


def _path(loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse(text: str) -> ConfigSpec:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigFileError(f"not valid YAML: {exc}")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigFileError("the file must hold a mapping with users, accounts and projects")
    try:
        return ConfigSpec.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            lines.append(f"{_path(err['loc'])}: {err['msg']}")
        raise ConfigFileError("; ".join(lines))


def _unique(items, attr: str, where: str) -> None:
    seen = set()
    for i, item in enumerate(items):
        value = getattr(item, attr)
        if value in seen:
            raise ConfigFileError(f"{where}[{i}].{attr}: {value!r} appears twice")
        seen.add(value)


def check(spec: ConfigSpec) -> None:
    """Every rule that needs no database, plus references between parts of the file and existing objects."""
    from postdesk.accounts.models import User
    from postdesk.mailboxes.models import EmailAccount
    from postdesk.mailboxes.services import check_account
    from postdesk.projects.models import Project

    _unique(spec.users, "username", "users")
    _unique(spec.accounts, "name", "accounts")
    _unique(spec.projects, "key", "projects")
    usernames = {u.username for u in spec.users} | set(User.objects.values_list("username", flat=True))
    project_keys = {p.key for p in spec.projects} | set(Project.objects.values_list("key", flat=True))
    file_accounts = {a.name: a for a in spec.accounts}
    db_accounts = {a.name: a.protocol for a in EmailAccount.objects.only("name", "protocol")}
    protocols = {**db_accounts, **{n: a.protocol for n, a in file_accounts.items()}}

    defaults = [a.name for a in spec.accounts if a.protocol == "smtp" and a.default]
    if len(defaults) > 1:
        raise ConfigFileError(
            f"accounts: only one SMTP account can be the default (got {', '.join(defaults)})"
        )
    forwarding_addresses: dict[str, str] = {}
    for i, a in enumerate(spec.accounts):
        where = f"accounts[{i}]"
        values = a.model_dump(exclude={"project", "default"})
        values["is_default"] = a.default
        try:
            check_account(values, where)
        except DomainError as exc:
            raise ConfigFileError(str(exc))
        if a.protocol == "forwarding":
            if not a.project:
                raise ConfigFileError(
                    f"{where}.project: a forwarding account needs the project its mail goes to"
                )
            if a.project not in project_keys:
                raise ConfigFileError(f"{where}.project: no project with key {a.project!r}")
            address = a.address.lower()
            if address in forwarding_addresses:
                raise ConfigFileError(
                    f"{where}.address: {a.address} is also {forwarding_addresses[address]!r}'s address"
                )
            forwarding_addresses[address] = a.name
        elif a.project:
            raise ConfigFileError(f"{where}.project: only forwarding accounts route to a project")

    for i, p in enumerate(spec.projects):
        where = f"projects[{i}]"
        try:
            rules.check_project_key(p.key, f"{where}.key")
        except Invalid as exc:
            raise ConfigFileError(str(exc))
        _unique(p.templates, "name", f"{where}.templates")
        _unique(p.ticket_types, "label", f"{where}.ticket_types")
        _unique(p.ticket_types, "export_value", f"{where}.ticket_types")
        _unique(p.queues.languages, "name", f"{where}.queues.languages")
        _unique(p.queues.languages, "language", f"{where}.queues.languages")
        _unique(p.agents, "username", f"{where}.agents")
        _unique(p.webhooks, "url", f"{where}.webhooks")
        _unique(p.dispositions, "name", f"{where}.dispositions")
        for j, q in enumerate(p.queues.languages):
            try:
                rules.check_language(q.language, f"{where}.queues.languages[{j}].language")
            except Invalid as exc:
                raise ConfigFileError(str(exc))
        names = [q.name for q in p.queues.languages]
        if p.queues.default_name and p.queues.default_name in names:
            raise ConfigFileError(
                f"{where}.queues.default_name: {p.queues.default_name!r} is also a language queue"
            )
        existing = Project.objects.filter(key=p.key).first()
        # the queue names after this file is applied: the default queue (renamed or not), the file's language queues,
        # and existing language queues the file does not mention
        queue_names = set(names)
        queue_names.add(p.queues.default_name or (existing.default_queue.name if existing else "Default"))
        if existing:
            file_languages = {q.language for q in p.queues.languages}
            queue_names |= {
                q.name
                for q in existing.queues.filter(is_default=False)
                if q.language not in file_languages and q.name not in names
            }
        template_names = {t.name for t in p.templates} | (
            set(existing.templates.values_list("name", flat=True)) if existing else set()
        )
        for j, agent in enumerate(p.agents):
            if agent.username not in usernames:
                raise ConfigFileError(f"{where}.agents[{j}].username: no user {agent.username!r}")
            for queue, level in agent.queues.items():
                if queue not in queue_names:
                    raise ConfigFileError(f"{where}.agents[{j}].queues.{queue}: no queue named {queue!r}")
                try:
                    rules.check_skill_level(level, f"{where}.agents[{j}].queues.{queue}")
                except Invalid as exc:
                    raise ConfigFileError(str(exc))
        for j, name in enumerate(p.sender_accounts or []):
            if name not in protocols:
                raise ConfigFileError(f"{where}.sender_accounts[{j}]: no account named {name!r}")
            if protocols[name] != "smtp":
                raise ConfigFileError(f"{where}.sender_accounts[{j}]: {name!r} is not an SMTP account")
        for j, d in enumerate(p.dispositions):
            if d.template and d.template not in template_names:
                raise ConfigFileError(f"{where}.dispositions[{j}].template: no template named {d.template!r}")
            if d.sender_account and d.sender_account not in protocols:
                raise ConfigFileError(
                    f"{where}.dispositions[{j}].sender_account: no account {d.sender_account!r}"
                )
        for j, w in enumerate(p.webhooks):
            from postdesk.integrations.ssrf import check_webhook_url

            try:
                check_webhook_url(w.url, f"{where}.webhooks[{j}].url")
            except Invalid as exc:
                raise ConfigFileError(str(exc))
        settings = p.email.model_dump(exclude_unset=True)
        current = (
            {name: getattr(existing, name) for name in rules.SETTING_FIELDS}
            if existing
            else {name: _model_default(name) for name in rules.SETTING_FIELDS}
        )
        try:
            rules.check_settings(
                {**current, **{k: v for k, v in settings.items() if k in rules.SETTING_FIELDS}},
                f"{where}.email",
            )
        except Invalid as exc:
            raise ConfigFileError(str(exc))
        art = settings.get("auto_response_template")
        if art and art not in template_names:
            raise ConfigFileError(f"{where}.email.auto_response_template: no template named {art!r}")


def _model_default(name: str) -> Any:
    from postdesk.projects.models import Project

    return Project._meta.get_field(name).get_default()


def apply(spec: ConfigSpec, by=None) -> list[str]:
    """Validate, then apply everything in one transaction. Returns the list of changes (empty: nothing changed)."""
    from postdesk.accounts.models import User
    from postdesk.accounts.services import upsert_user
    from postdesk.integrations.services import upsert_webhook
    from postdesk.mailboxes.models import EmailAccount
    from postdesk.mailboxes.services import upsert_account
    from postdesk.projects import services
    from postdesk.projects.models import Disposition, Project
    from postdesk.records.models import RecordField

    check(spec)
    out: list[str] = []
    try:
        with transaction.atomic():
            for u in spec.users:
                out += upsert_user(username=u.username, password=u.password, role=u.role, by=by)
            projects: dict[str, Project] = {}
            for p in spec.projects:
                project = Project.objects.filter(key=p.key).first()
                if project is None:
                    project = services.create_project(
                        key=p.key, name=p.name, by=by, default_queue_name=p.queues.default_name or "Default"
                    )
                    out.append(f"+ project {p.key} ({p.name})")
                else:
                    out += services.rename_project(project, p.name, by=by)
                projects[p.key] = project
            for i, a in enumerate(spec.accounts):
                values = a.model_dump(exclude={"project", "default"}, exclude_none=True)
                values["is_default"] = a.default
                project = None
                if a.project:
                    project = projects.get(a.project) or Project.objects.get(key=a.project)
                _, lines = upsert_account(values, project=project, by=by, prefix=f"accounts[{i}]")
                out += lines
            for i, p in enumerate(spec.projects):
                where = f"projects[{i}]"
                project = projects[p.key]
                if p.queues.default_name:
                    out += services.update_queue(project.default_queue, name=p.queues.default_name, by=by)
                for q in p.queues.languages:
                    queue = project.queues.filter(name=q.name).first()
                    if queue is None:
                        by_lang = project.queues.filter(language=q.language, is_default=False).first()
                        if by_lang is not None:
                            out += services.update_queue(by_lang, name=q.name, by=by)
                        else:
                            services.create_queue(project, name=q.name, language=q.language, by=by)
                            out.append(f"+ queue {q.name!r} ({q.language}) in project {p.key}")
                    else:
                        out += services.update_queue(queue, language=q.language, by=by)
                for t in p.templates:
                    out += services.upsert_template(project, t.name, t.model_dump(exclude={"name"}), by=by)
                for tt in p.ticket_types:
                    out += services.upsert_ticket_type(project, tt.label, tt.export_value, by=by)
                settings = p.email.model_dump(exclude_unset=True)
                if settings:
                    out += services.update_settings(project, settings, by=by, prefix=f"{where}.email")
                if p.sender_accounts is not None:
                    accounts = [EmailAccount.objects.get(name=n) for n in p.sender_accounts]
                    out += services.set_sender_accounts(project, accounts, by=by)
                for agent in p.agents:
                    user = User.objects.get(username=agent.username)
                    out += services.set_agent_skills(project, user, agent.queues, by=by)
                for d in p.dispositions:
                    template = project.templates.filter(name=d.template).first() if d.template else None
                    sender = (
                        EmailAccount.objects.filter(name=d.sender_account).first()
                        if d.sender_account
                        else None
                    )
                    current = project.dispositions.filter(name=d.name).first()
                    if current is None:
                        Disposition.objects.create(
                            project=project, name=d.name, template=template, sender_account=sender
                        )
                        out.append(f"+ disposition {d.name!r} in project {p.key}")
                    elif current.template_id != getattr(
                        template, "pk", None
                    ) or current.sender_account_id != getattr(sender, "pk", None):
                        current.template, current.sender_account = template, sender
                        current.save()
                        out.append(f"~ disposition {d.name!r} in project {p.key}")
                for f in p.record_fields:
                    current = project.record_fields.filter(name=f.name).first()
                    if current is None:
                        RecordField.objects.create(
                            project=project, name=f.name, label=f.label, personal_data=f.personal_data
                        )
                        out.append(f"+ record field {f.name!r} in project {p.key}")
                    elif (current.label, current.personal_data) != (f.label, f.personal_data):
                        current.label, current.personal_data = f.label, f.personal_data
                        current.save()
                        out.append(f"~ record field {f.name!r} in project {p.key}")
                for j, w in enumerate(p.webhooks):
                    out += upsert_webhook(
                        project,
                        url=w.url,
                        events=w.events,
                        secret=w.secret,
                        enabled=w.enabled,
                        by=by,
                        field=f"{where}.webhooks[{j}]",
                    )
    except DomainError as exc:
        raise ConfigFileError(str(exc))
    return out


def apply_text(text: str, by=None) -> list[str]:
    return apply(parse(text), by=by)
