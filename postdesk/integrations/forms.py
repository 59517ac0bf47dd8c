"""The webhook form of the supervisor console: it binds and renders; integrations.services decides (the same rules
as the API and `postdesk apply`), and a DomainError is shown on the field it names."""

from __future__ import annotations

from django import forms

from postdesk.projects.forms import ConsoleForm


class WebhookForm(ConsoleForm):
    url = forms.CharField(
        label="URL",
        required=False,
        strip=True,
        help_text="Where postdesk POSTs the events (https:// recommended). Private and loopback addresses are refused "
        "unless the operator allows them.",
        widget=forms.URLInput(
            attrs={"maxlength": 1000, "placeholder": "https://crm.example.com/hooks/postdesk"}
        ),
    )
    events = forms.MultipleChoiceField(
        label="Events",
        required=False,
        choices=[
            ("email", "Email: received, and sent by an agent"),
            ("ticket", "Ticket: added, updated, deleted"),
        ],
        initial=["email", "ticket"],
        widget=forms.CheckboxSelectMultiple,
    )
    secret = forms.CharField(
        label="Signing secret",
        required=False,
        strip=True,
        help_text="At least 16 characters; leave empty to have one generated (shown once).",
        widget=forms.TextInput(attrs={"autocomplete": "off", "maxlength": 200}),
    )
