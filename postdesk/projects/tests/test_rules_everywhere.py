"""Every validation rule of the supervisor console, through all three front ends: the UI (form posts), the API and
`postdesk apply`. Each rule is written once (projects.rules, projects.services, mailboxes.services); this table proves
that each front end refuses the same input, names the same field, and changes nothing.

A few rules have no meaning in one front end (a configuration file never deletes a queue, for example): their cell
says why instead of testing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from django.urls import reverse

from postdesk.projects.config import ConfigFileError, apply_text
from postdesk.projects.forms import SettingsForm
from postdesk.projects.tests.conftest import inline_error, snapshot

PROJECT = {"key": "101", "name": "Acme Care"}


@dataclass
class Ctx:
    project: Any
    users: dict

    def queue(self, name):
        return self.project.queues.get(name=name)


@dataclass
class Rule:
    id: str
    status: int  # 422 invalid, 409 conflict
    ui: Callable  # (client, ctx) -> (response, id of the inline error element)
    api: Callable  # (api client, ctx) -> response
    api_field: str
    apply: dict | str  # a configuration file, or why the rule has no meaning there
    apply_field: str = ""


def settings_post(client, ctx, **changes):
    values = {**SettingsForm.initial_for(ctx.project), **changes}
    data = {}
    for key, value in values.items():
        if isinstance(value, bool):
            if value:
                data[key] = "on"
        elif value is None:
            data[key] = ""
        else:
            data[key] = value if isinstance(value, list) else str(value)
    return client.post(reverse("project-settings", args=["101"]), data)


def setting_rule(id, changes, error_field):
    """An Email handling rule: the whole General settings form, PATCH .../settings, and a file's `email:`."""

    def ui(client, ctx):
        return settings_post(client, ctx, **changes), f"id_{error_field}_error"

    def api(client, ctx):
        return client.patch("/api/v1/projects/101/settings", changes)

    return Rule(
        id=id,
        status=422,
        ui=ui,
        api=api,
        api_field=error_field,
        apply={"projects": [{**PROJECT, "email": changes}]},
        apply_field=f"projects[0].email.{error_field}",
    )


def post(name, *args, data):
    def ui(client, ctx):
        return client.post(reverse(name, args=[a(ctx) if callable(a) else a for a in args]), data)

    return ui


def ui_error(ui, element_id):
    def run(client, ctx):
        return ui(client, ctx), element_id(ctx) if callable(element_id) else element_id

    return run


def account_rule(id, protocol, values, error_field, status=422, project=None):
    """An account refused by mailboxes.services.check_account / upsert_account, in all three front ends."""
    form = {k: ("on" if v is True else str(v)) for k, v in values.items() if v is not False}
    if project:
        form["project"] = project

    def ui(client, ctx):
        response = client.post(reverse("account-create", args=[protocol]), form)
        return response, f"id_{error_field}_error"

    def api(client, ctx):
        return client.post(
            "/api/v1/accounts", {**values, "protocol": protocol, **({"project": project} if project else {})}
        )

    return Rule(
        id=id,
        status=status,
        ui=ui,
        api=api,
        api_field=error_field,
        apply={"accounts": [{**values, "protocol": protocol, **({"project": project} if project else {})}]},
        apply_field=f"accounts[0].{error_field}",
    )


SMTP = {
    "name": "out2",
    "address": "out2@acme.test",
    "host": "smtp.acme.test",
    "security": "none",
    "auth": "none",
}

RULES = [
    # Project > Channels > E-mail > General settings > Email handling
    setting_rule("list size below 1", {"list_size": 0}, "list_size"),
    setting_rule("list size above 250", {"list_size": 251}, "list_size"),
    setting_rule("email queue needs language detection", {"language_detection": False}, "email_queue"),
    setting_rule("automatic deletion under 30 days", {"auto_delete_days": 29}, "auto_delete_days"),
    setting_rule(
        "automatic response template must exist",
        {"auto_response_template": "missing"},
        "auto_response_template",
    ),
    Rule(
        "project name must not be empty",
        422,
        lambda c, ctx: (settings_post(c, ctx, name=""), "id_name_error"),
        lambda c, ctx: c.patch("/api/v1/projects/101", {"name": "  "}),
        "name",
        {"projects": [{**PROJECT, "name": ""}]},
        "projects[0].name",
    ),
    # General settings > Email sender accounts
    Rule(
        "sender accounts are SMTP accounts",
        422,
        lambda c, ctx: (settings_post(c, ctx, sender_accounts=["support-in"]), "id_sender_accounts_error"),
        lambda c, ctx: c.put("/api/v1/projects/101/sender-accounts", {"sender_accounts": ["support-in"]}),
        "sender_accounts.0",
        {"projects": [{**PROJECT, "sender_accounts": ["support-in"]}]},
        "projects[0].sender_accounts[0]",
    ),
    Rule(
        "the default sender account is one of the selected",
        422,
        lambda c, ctx: (
            settings_post(c, ctx, sender_accounts=["support-out"], default_sender_account="sales-out"),
            "id_default_sender_account_error",
        ),
        lambda c, ctx: c.put(
            "/api/v1/projects/101/sender-accounts",
            {"sender_accounts": ["support-out"], "default_sender_account": "sales-out"},
        ),
        "default_sender_account",
        "in a file the account's own `default` decides the default sender account",
    ),
    # Queues tab
    Rule(
        "a queue's language must be known",
        422,
        ui_error(
            post("project-queues", "101", data={"name": "Klingon", "language": "xx"}), "id_language_error"
        ),
        lambda c, ctx: c.post("/api/v1/projects/101/queues", {"name": "Klingon", "language": "xx"}),
        "language",
        {"projects": [{**PROJECT, "queues": {"languages": [{"name": "Klingon", "language": "xx"}]}}]},
        "projects[0].queues.languages[0].language",
    ),
    Rule(
        "a queue's name is unique in the project",
        409,
        ui_error(post("project-queues", "101", data={"name": "English", "language": "de"}), "id_name_error"),
        lambda c, ctx: c.post("/api/v1/projects/101/queues", {"name": "English", "language": "de"}),
        "name",
        {
            "projects": [
                {
                    **PROJECT,
                    "queues": {
                        "languages": [
                            {"name": "English", "language": "en"},
                            {"name": "English", "language": "de"},
                        ]
                    },
                }
            ]
        },
        "projects[0].queues.languages",
    ),
    Rule(
        "a queue needs a name",
        422,
        ui_error(post("project-queues", "101", data={"name": " ", "language": "de"}), "id_name_error"),
        lambda c, ctx: c.post("/api/v1/projects/101/queues", {"name": " ", "language": "de"}),
        "name",
        {"projects": [{**PROJECT, "queues": {"languages": [{"name": "", "language": "de"}]}}]},
        "projects[0].queues.languages[0].name",
    ),
    Rule(
        "the default queue can be renamed but not deleted",
        409,
        ui_error(
            post("project-queue-delete", "101", lambda ctx: ctx.project.default_queue.pk, data={}),
            lambda ctx: f"queue-{ctx.project.default_queue.pk}_error",
        ),
        lambda c, ctx: c.delete("/api/v1/projects/101/queues/Default"),
        "queue",
        "a configuration file never deletes queues",
    ),
    # Agents > Queues & Skills
    Rule(
        "a skill level is 1 to 10",
        422,
        lambda c, ctx: (
            c.post(
                reverse("project-skills", args=["101"]),
                {f"skill-{ctx.users['alice'].pk}-{ctx.queue('English').pk}": "11"},
            ),
            f"skill-{ctx.users['alice'].pk}-{ctx.queue('English').pk}_error",
        ),
        lambda c, ctx: c.put("/api/v1/projects/101/queues/English/agents/alice", {"level": 11}),
        "level",
        {"projects": [{**PROJECT, "agents": [{"username": "alice", "queues": {"English": 11}}]}]},
        "projects[0].agents[0].queues.English",
    ),
    # Templates
    Rule(
        "a template's subject has no line breaks",
        422,
        ui_error(
            post("project-templates", "101", data={"name": "x", "subject": "Hi\r\nBcc: victim@evil.test"}),
            "id_subject_error",
        ),
        lambda c, ctx: c.put("/api/v1/projects/101/templates/x", {"subject": "Hi\r\nBcc: victim@evil.test"}),
        "subject",
        {"projects": [{**PROJECT, "templates": [{"name": "x", "subject": "Hi\r\nBcc: victim@evil.test"}]}]},
        "subject",
    ),
    Rule(
        "a template's CC are email addresses",
        422,
        ui_error(post("project-templates", "101", data={"name": "x", "cc": "not-an-address"}), "id_cc_error"),
        lambda c, ctx: c.put("/api/v1/projects/101/templates/x", {"cc": ["not-an-address"]}),
        "cc.0",
        {"projects": [{**PROJECT, "templates": [{"name": "x", "cc": ["not-an-address"]}]}]},
        "cc.0",
    ),
    Rule(
        "a template's BCC are email addresses",
        422,
        ui_error(
            post("project-templates", "101", data={"name": "x", "bcc": "a@b.test, <evil>"}), "id_bcc_error"
        ),
        lambda c, ctx: c.put("/api/v1/projects/101/templates/x", {"bcc": ["a@b.test", "<evil>"]}),
        "bcc.1",
        {"projects": [{**PROJECT, "templates": [{"name": "x", "bcc": ["a@b.test", "<evil>"]}]}]},
        "bcc.1",
    ),
    Rule(
        "the automatic response template cannot be deleted",
        409,
        lambda c, ctx: (
            c.post(
                reverse("project-template-delete", args=["101", ctx.project.templates.get(name="ack").pk])
            ),
            "form_error",
        ),
        lambda c, ctx: c.delete("/api/v1/projects/101/templates/ack"),
        "template",
        "a configuration file never deletes templates",
    ),
    # Ticket types (Custom values)
    Rule(
        "a ticket type's label is unique",
        409,
        ui_error(
            post("project-ticket-types", "101", data={"label": "Complaint", "export_value": "OTHER"}),
            "id_label_error",
        ),
        lambda c, ctx: c.post(
            "/api/v1/projects/101/ticket-types", {"label": "Complaint", "export_value": "OTHER"}
        ),
        "label",
        {"projects": [{**PROJECT, "ticket_types": [{"label": "Complaint", "export_value": "OTHER"}]}]},
        "label",
    ),
    Rule(
        "a ticket type needs an export value",
        422,
        ui_error(
            post("project-ticket-types", "101", data={"label": "Other", "export_value": ""}),
            "id_export_value_error",
        ),
        lambda c, ctx: c.post("/api/v1/projects/101/ticket-types", {"label": "Other", "export_value": " "}),
        "export_value",
        {"projects": [{**PROJECT, "ticket_types": [{"label": "Other", "export_value": ""}]}]},
        "projects[0].ticket_types[0].export_value",
    ),
    # Projects and cloning
    Rule(
        "a project ID is 1 to 20 letters or digits",
        422,
        ui_error(post("project-create", data={"key": "1 0 1", "name": "X"}), "id_key_error"),
        lambda c, ctx: c.post("/api/v1/projects", {"key": "1 0 1", "name": "X"}),
        "key",
        {"projects": [{"key": "1 0 1", "name": "X"}]},
        "projects[0].key",
    ),
    Rule(
        "a clone needs a project ID not in use",
        409,
        ui_error(post("project-clone", "101", data={"key": "101", "name": "Copy"}), "id_key_error"),
        lambda c, ctx: c.post("/api/v1/projects/101/clone", {"key": "101", "name": "Copy"}),
        "key",
        "a file describes the project with that key: it updates it",
    ),
    # Global settings > Email accounts
    account_rule(
        "an account name is letters, digits, '.', '_' or '-'", "smtp", {**SMTP, "name": "out two"}, "name"
    ),
    account_rule("an SMTP account needs its mail server", "smtp", {**SMTP, "host": ""}, "host"),
    account_rule("an SMTP port is 1 to 65535", "smtp", {**SMTP, "port": 70000}, "port"),
    account_rule(
        "LOGIN authentication needs a username", "smtp", {**SMTP, "auth": "login", "username": ""}, "username"
    ),
    account_rule(
        "an account's address is an email address", "smtp", {**SMTP, "address": "not-an-address"}, "address"
    ),
    account_rule(
        "a forwarding account needs its project",
        "forwarding",
        {"name": "in2", "address": "in2@acme.test"},
        "project",
    ),
    account_rule(
        "a forwarding address belongs to one account",
        "forwarding",
        {"name": "in2", "address": "support@acme.test"},
        "address",
        status=409,
        project="101",
    ),
    account_rule(
        "a mass-email address is on its domain",
        "mass",
        {"name": "news", "address": "news@other.test", "domain": "acme.test"},
        "address",
    ),
    account_rule(
        "a mass-email domain is a domain name",
        "mass",
        {"name": "news", "address": "news@acme", "domain": "acme"},
        "domain",
    ),
]
IDS = [r.id for r in RULES]


@pytest.fixture
def ctx(project, templates, users, forwarding, sender_account):
    from postdesk.mailboxes.services import upsert_account
    from postdesk.projects import services

    services.update_settings(project, {"auto_response_template": "ack"})
    upsert_account(
        {
            "name": "sales-out",
            "protocol": "smtp",
            "address": "sales@acme.test",
            "host": "h.acme.test",
            "auth": "none",
        }
    )
    return Ctx(project=project, users=users)


@pytest.mark.django_db
@pytest.mark.parametrize("rule", RULES, ids=IDS)
def test_the_console_refuses_it_inline_and_saves_nothing(rule, ctx, supervisor_client):
    before = snapshot()
    response, element_id = rule.ui(supervisor_client, ctx)
    assert response.status_code == rule.status, response.content.decode()[:3000]
    assert inline_error(response, element_id), f"no inline error #{element_id}"
    assert snapshot() == before


@pytest.mark.django_db
@pytest.mark.parametrize("rule", RULES, ids=IDS)
def test_the_api_refuses_it_naming_the_field_and_changes_nothing(rule, ctx, supervisor_api):
    supervisor_api.get("/api/v1/projects")  # the token's first use is bookkeeping, not a change
    before = snapshot()
    response = rule.api(supervisor_api, ctx)
    assert response.status_code == rule.status, response.content
    assert response.json()["field"] == rule.api_field, response.json()
    assert snapshot() == before


FILE_RULES = [r for r in RULES if isinstance(r.apply, dict)]


@pytest.mark.django_db
@pytest.mark.parametrize("rule", FILE_RULES, ids=[r.id for r in FILE_RULES])
def test_postdesk_apply_refuses_it_naming_the_field_and_changes_nothing(rule, ctx):
    before = snapshot()
    with pytest.raises(ConfigFileError) as error:
        apply_text(yaml.safe_dump(rule.apply))
    assert rule.apply_field in str(error.value)
    assert snapshot() == before


def test_every_rule_has_a_file_case_or_says_why_files_cannot_break_it():
    for rule in RULES:
        assert isinstance(rule.apply, dict) or (isinstance(rule.apply, str) and rule.apply), rule.id
