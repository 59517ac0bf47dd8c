"""Forms of the supervisor console. They bind and render only: every rule lives in projects.rules and the services
(one validation per rule, shared with the API and `postdesk apply`), and a DomainError the service raises is shown
inline on the field it names."""

from __future__ import annotations

import re

from django import forms

from postdesk.core.errors import DomainError
from postdesk.projects import rules
from postdesk.projects.models import Project

BOOLEAN_SETTINGS = (
    ("lock_emails", "Lock emails to agents", "Emails in an agent's list do not appear to other agents."),
    ("change_pref_user", "Change pref user", "Agents and supervisors can transfer a case to another person."),
    (
        "agents_create_records",
        "Enable agents to create new records",
        "Agents can create a new customer on the contact assignment panel.",
    ),
    ("search", "Search", "Agents can use the Search function within tickets."),
    (
        "shared_tickets",
        "Shared ticket handling",
        "Any agent can view and handle any ticket, not just the ones assigned to them.",
    ),
    ("display_address", "Display address", "Show the project's email address when an agent sends an email."),
    (
        "display_template_cc",
        "Display template CC recipients",
        "Agents see a template's CC recipients when writing a response.",
    ),
    (
        "display_template_bcc",
        "Display template BCC recipients",
        "Agents see a template's BCC recipients when writing a response.",
    ),
    ("language_detection", "Email language detection", "Detect the language of every incoming email."),
    (
        "email_queue",
        "Email queue",
        "Distribute emails to the queues of their language (needs Email language detection); "
        "emails of other languages go to the default queue.",
    ),
)


def int_or_text(value):
    """A number typed into a form: '' is None, digits are an int, anything else is passed on for the rule to refuse."""
    value = (value or "").strip() if isinstance(value, str) else value
    if value in ("", None):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def split_addresses(text: str) -> list[str]:
    """CC/BCC as typed: addresses separated by commas, semicolons or spaces."""
    return [a for a in re.split(r"[,;\s]+", text or "") if a]


class ConsoleForm(forms.Form):
    """A form whose fields are never required by Django (the services decide) and that shows domain errors."""

    def add_domain_error(self, exc: DomainError) -> None:
        target = None
        if exc.field:
            for part in exc.field.split("."):
                if part in self.fields:
                    target = part
                    break
        existing = self.errors.get(target or "__all__", [])
        if not hasattr(self, "cleaned_data"):  # an unbound form (e.g. a refused delete shows the page again)
            self.cleaned_data = {}
        if exc.detail not in existing:
            self.add_error(target, exc.detail)


def _text(label, help_text="", **attrs):
    return forms.CharField(
        label=label, required=False, strip=True, help_text=help_text, widget=forms.TextInput(attrs=attrs)
    )


def _number(label, help_text="", **attrs):
    return forms.CharField(
        label=label, required=False, help_text=help_text, widget=forms.NumberInput(attrs=attrs)
    )


class ProjectForm(ConsoleForm):
    key = _text(
        "Project ID",
        "1 to 20 letters or digits: the xxx of ticket numbers xxx-YYYYMMDD-zzzzzz.",
        required=True,
    )
    name = _text("Name", required=True)


class SettingsForm(ConsoleForm):
    """Project > Channels > E-mail > General settings: Email handling, Email sender accounts, Email templates."""

    name = _text("Project name", required=True)
    list_size = _number(
        "New email list element number",
        f"How many new emails agents see at once ({rules.LIST_SIZE_MIN} to {rules.LIST_SIZE_MAX}).",
        min=rules.LIST_SIZE_MIN,
        max=rules.LIST_SIZE_MAX,
    )
    auto_response_template = forms.CharField(
        label="Automatic response",
        required=False,
        help_text="The template sent as an automatic reply to every incoming email of the project.",
        widget=forms.Select(),
    )
    auto_delete_days = _number(
        "Automatic deletion after (days)",
        f"Delete emails (and tickets left empty) this many days after receipt and closure; empty: never. "
        f"At least {rules.AUTO_DELETE_MIN_DAYS}.",
        min=rules.AUTO_DELETE_MIN_DAYS,
    )
    sender_accounts = forms.Field(required=False, widget=forms.CheckboxSelectMultiple)
    default_sender_account = forms.CharField(required=False)
    visible_templates = forms.Field(required=False, widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, project: Project, **kwargs):
        super().__init__(*args, **kwargs)
        self.project = project
        for name, label, help_text in BOOLEAN_SETTINGS:
            self.fields[name] = forms.BooleanField(label=label, required=False, help_text=help_text)
        names = list(project.templates.values_list("name", flat=True))
        self.fields["auto_response_template"].widget.choices = [("", "None"), *[(n, n) for n in names]]

    @classmethod
    def initial_for(cls, project: Project) -> dict:
        from postdesk.mailboxes.services import default_sender_for

        initial = {name: getattr(project, name) for name in rules.SETTING_FIELDS}
        initial["name"] = project.name
        initial["auto_response_template"] = (
            project.auto_response_template.name if project.auto_response_template_id else ""
        )
        initial["sender_accounts"] = list(project.sender_links.values_list("account__name", flat=True))
        default = default_sender_for(project)
        initial["default_sender_account"] = default.name if default and default.is_default else ""
        initial["visible_templates"] = list(
            project.templates.filter(visible_to_agents=True).values_list("name", flat=True)
        )
        return initial

    def settings_values(self) -> dict:
        d = self.cleaned_data
        values = {name: d.get(name, False) for name, _, _ in BOOLEAN_SETTINGS}
        values["list_size"] = int_or_text(d.get("list_size"))
        values["auto_delete_days"] = int_or_text(d.get("auto_delete_days"))
        values["auto_response_template"] = d.get("auto_response_template") or None
        return values

    def selected(self, name: str) -> list[str]:
        """The values of a checkbox list as submitted (or as initially set)."""
        if self.is_bound:
            return self.data.getlist(name)
        return list(self.initial.get(name) or [])

    def value_of(self, name: str) -> str:
        return (self.data.get(name) if self.is_bound else self.initial.get(name)) or ""


class QueueForm(ConsoleForm):
    name = _text("Name", required=True, maxlength=100)
    language = forms.CharField(label="Language", required=False, widget=forms.Select())

    def __init__(self, *args, **kwargs):
        from postdesk.inbound.languages import LANGUAGE_NAMES

        super().__init__(*args, **kwargs)
        choices = sorted(LANGUAGE_NAMES.items(), key=lambda item: item[1])
        self.fields["language"].widget.choices = [
            ("", "Choose a language"),
            *[(c, f"{n} ({c})") for c, n in choices],
        ]


class TemplateForm(ConsoleForm):
    name = _text("Name", required=True, maxlength=100)
    subject = _text(
        "Subject", "Placeholders such as {{ subject }} and {{ name }} are filled in when sending."
    )
    body = forms.CharField(
        label="Body", required=False, strip=False, widget=forms.Textarea(attrs={"rows": 10})
    )
    body_html = forms.CharField(
        label="HTML body (optional)",
        required=False,
        strip=False,
        help_text="Used by mass email; agents' replies use the plain body.",
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    cc = _text("CC", "Addresses separated by commas.")
    bcc = _text("BCC", "Addresses separated by commas.")
    visible_to_agents = forms.BooleanField(label="Visible to agents", required=False)

    @classmethod
    def initial_for(cls, template) -> dict:
        return {
            "name": template.name,
            "subject": template.subject,
            "body": template.body,
            "body_html": template.body_html,
            "cc": ", ".join(template.cc),
            "bcc": ", ".join(template.bcc),
            "visible_to_agents": template.visible_to_agents,
        }

    def template_values(self) -> dict:
        d = self.cleaned_data
        return {
            "subject": d.get("subject", ""),
            "body": d.get("body", ""),
            "body_html": d.get("body_html", ""),
            "cc": split_addresses(d.get("cc", "")),
            "bcc": split_addresses(d.get("bcc", "")),
            "visible_to_agents": d.get("visible_to_agents", False),
        }


class TicketTypeForm(ConsoleForm):
    label = _text("Label", required=True, maxlength=100)
    export_value = _text("Export value", required=True, maxlength=100)


class CloneForm(ConsoleForm):
    key = _text("New project ID", "1 to 20 letters or digits.", required=True)
    name = _text("New project name", required=True)
