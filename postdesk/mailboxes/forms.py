"""The email account form (Global settings > Email accounts), one per protocol. It binds and renders only: the rules are
mailboxes.services.check_account's, shared with the API and `postdesk apply`."""

from __future__ import annotations

from django import forms

from postdesk.mailboxes.models import Auth, EmailAccount, Protocol, Security
from postdesk.projects.forms import ConsoleForm, int_or_text

SMTP_TEXT = (
    "host",
    "username",
    "ca_file",
    "oauth_provider",
    "oauth_client_id",
    "oauth_authorize_url",
    "oauth_token_url",
    "oauth_scope",
)
FIELDS_BY_PROTOCOL = {
    Protocol.FORWARDING: ("name", "address", "display_name", "project", "enabled"),
    Protocol.SMTP: (
        "name",
        "address",
        "display_name",
        "is_default",
        "enabled",
        "host",
        "port",
        "security",
        "auth",
        "username",
        "password",
        "tls_verify",
        "ca_file",
        "max_per_second",
        "oauth_provider",
        "oauth_client_id",
        "oauth_client_secret",
        "oauth_authorize_url",
        "oauth_token_url",
        "oauth_scope",
    ),
    Protocol.MASS: ("name", "address", "display_name", "domain", "enabled"),
}


def _text(label, help_text="", widget=None, **attrs):
    return forms.CharField(
        label=label,
        required=False,
        help_text=help_text,
        widget=widget or forms.TextInput(attrs=attrs),
    )


class AccountForm(ConsoleForm):
    name = _text("Name", "Letters, digits, '.', '_' or '-'; it cannot be changed later.", required=True)
    address = _text("Email address", required=True, autocomplete="off")
    display_name = _text("Display name", "The sender name of outbound messages.")
    project = forms.CharField(
        label="Project",
        required=False,
        help_text="The project the inbound emails are routed to.",
        widget=forms.Select(),
    )
    enabled = forms.BooleanField(label="Enabled", required=False)
    is_default = forms.BooleanField(
        label="Default",
        required=False,
        help_text="The default sender account (one for every project that offers it).",
    )
    host = _text("Mail server", "For example smtp.office365.com or smtp.gmail.com.")
    port = forms.CharField(
        label="Port",
        required=False,
        help_text="Empty: 587 with STARTTLS, 465 with TLS, 25 without.",
        widget=forms.NumberInput(attrs={"min": 1, "max": 65535}),
    )
    security = forms.CharField(
        label="Security protocol", required=False, widget=forms.Select(choices=Security.choices)
    )
    auth = forms.CharField(
        label="Authentication method", required=False, widget=forms.Select(choices=Auth.choices)
    )
    username = _text("Username", autocomplete="off")
    password = forms.CharField(
        label="Password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    tls_verify = forms.BooleanField(
        label="Verify the server's certificate", required=False, help_text="Turn off only for test servers."
    )
    ca_file = _text("CA file", "A file of trusted certificates on this server (optional).")
    max_per_second = forms.CharField(
        label="Messages per second at most",
        required=False,
        help_text="Empty: no limit.",
        widget=forms.NumberInput(attrs={"min": 1}),
    )
    oauth_provider = _text("OAuth provider", "microsoft, google or custom (XOAUTH2 only).")
    oauth_client_id = _text("OAuth client ID")
    oauth_client_secret = forms.CharField(
        label="OAuth client secret",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )
    oauth_authorize_url = _text("OAuth authorize URL")
    oauth_token_url = _text("OAuth token URL")
    oauth_scope = _text("OAuth scope")
    domain = _text("Domain", "The sending domain; its DNS records are shown once the account is saved.")

    def __init__(self, *args, protocol: str, account: EmailAccount | None = None, **kwargs):
        from postdesk.projects.models import Project

        super().__init__(*args, **kwargs)
        self.protocol = protocol
        self.account = account
        for name in list(self.fields):
            if name not in FIELDS_BY_PROTOCOL[protocol]:
                del self.fields[name]
        if "project" in self.fields:
            choices = [(p.key, f"{p.key} {p.name}") for p in Project.objects.all()]
            self.fields["project"].widget.choices = (
                choices if account else [("", "Choose a project"), *choices]
            )
        if account is not None:
            self.fields["name"].disabled = True
            for secret in ("password", "oauth_client_secret"):
                if secret in self.fields:
                    stored = bool(getattr(account, secret))
                    self.fields[secret].help_text = (
                        "Stored (never shown). Leave empty to keep it." if stored else "Not set."
                    )

    @classmethod
    def initial_for(cls, account: EmailAccount | None, protocol: str) -> dict:
        if account is None:
            return {"enabled": True, "tls_verify": True, "security": Security.STARTTLS, "auth": Auth.LOGIN}
        from postdesk.mailboxes.services import account_values

        initial = account_values(account)
        initial["project"] = account.project.key if account.project_id else ""
        return initial

    def fieldsets(self) -> list[tuple[str, list]]:
        """The form's fields grouped as on the tutorial's account page."""
        groups = [
            ("Account", ["name", "address", "display_name", "project", "domain", "enabled", "is_default"]),
            ("Mail server preferences", ["host", "port", "security", "auth", "username", "password"]),
            ("Connection details", ["tls_verify", "ca_file", "max_per_second"]),
            (
                "OAuth 2.0 (XOAUTH2)",
                [
                    "oauth_provider",
                    "oauth_client_id",
                    "oauth_client_secret",
                    "oauth_authorize_url",
                    "oauth_token_url",
                    "oauth_scope",
                ],
            ),
        ]
        out = []
        for title, names in groups:
            fields = [self[n] for n in names if n in self.fields]
            if fields:
                out.append((title, fields))
        return out

    def project_key(self) -> str:
        return (self.cleaned_data.get("project") or "").strip()

    def values(self) -> dict:
        """The service's values: what was typed, numbers as numbers; empty secrets are left out (kept)."""
        d = self.cleaned_data
        values = {"name": self.account.name if self.account else d.get("name", ""), "protocol": self.protocol}
        for name in self.fields:
            if name in ("name", "project"):
                continue
            value = d.get(name)
            if name in ("port", "max_per_second"):
                value = int_or_text(value)
            if name in ("password", "oauth_client_secret") and not value:
                continue
            values[name] = value
        return values
