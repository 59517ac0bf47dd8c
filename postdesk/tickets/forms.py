"""Forms of the agent workspace (tickets side): the reply form, transfer, close and the ticket list filters. They bind
and render only; every rule lives in tickets.services, whose DomainError the views show inline."""

from __future__ import annotations

import re

from django import forms

from postdesk.tickets.models import Substatus

MAX_ATTACHMENTS = 10
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024  # all files of one reply together
_ADDRESS_SPLIT = re.compile(r"[,;\s]+")
_MIME_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*\Z")


def split_addresses(text: str) -> list[str]:
    return [a for a in _ADDRESS_SPLIT.split(text or "") if a]


def sender_label(account, display_address: bool) -> str:
    """How a sender account appears in the chooser: with its address only when the project's Display address is on."""
    name = account.display_name or account.name
    return f"{name} <{account.address}>" if display_address else name


def transfer_candidates(project, exclude=None):
    """Who can receive a case (Change pref user): the project's agents and the supervisors."""
    from django.db.models import Q

    from postdesk.accounts.models import Role, User

    qs = (
        User.objects.filter(is_active=True)
        .filter(Q(projectmember__project=project) | Q(role=Role.SUPERVISOR) | Q(is_superuser=True))
        .distinct()
        .order_by("first_name", "username")
    )
    if exclude is not None:
        qs = qs.exclude(pk=exclude.pk)
    return qs


class ReplyForm(forms.Form):
    """Write response: sender account, template, text, extra CC, attachments (read from request.FILES), the message
    answered, and when the ticket was opened (the collision warning)."""

    sender_account = forms.TypedChoiceField(label="From", coerce=int, required=False, empty_value=None)
    template = forms.TypedChoiceField(label="Template", coerce=int, required=False, empty_value=None)
    body = forms.CharField(
        label="Message", required=False, strip=False, widget=forms.Textarea(attrs={"rows": 8})
    )
    cc = forms.CharField(
        label="Cc",
        required=False,
        max_length=2000,
        widget=forms.TextInput(attrs={"placeholder": "Optional, comma separated"}),
    )
    in_reply_to = forms.IntegerField(required=False, widget=forms.HiddenInput)
    opened_at = forms.DateTimeField(required=False, widget=forms.HiddenInput)
    force = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, project, user, **kwargs):
        super().__init__(*args, **kwargs)
        from postdesk.mailboxes.services import default_sender_for

        self.project = project
        self.accounts = [
            link.account
            for link in project.sender_links.select_related("account").order_by("account__name")
            if link.account.enabled
        ]
        default = default_sender_for(project)
        self.fields["sender_account"].choices = [
            (a.pk, sender_label(a, project.display_address)) for a in self.accounts
        ]
        if default is not None:
            self.fields["sender_account"].initial = default.pk
        templates = project.templates.all()
        if not user.is_supervisor:
            templates = templates.filter(visible_to_agents=True)
        self.templates = {t.pk: t for t in templates}
        self.fields["template"].choices = [("", "No template")] + [(t.pk, t.name) for t in templates]
        self.fields["body"].widget.attrs.update({"data-reply-body": "", "placeholder": "Write your reply…"})

    def clean_cc(self):
        addresses = split_addresses(self.cleaned_data.get("cc", ""))
        if len(addresses) > 50:
            raise forms.ValidationError("at most 50 CC recipients")
        return addresses

    def account(self):
        pk = self.cleaned_data.get("sender_account")
        return next((a for a in self.accounts if a.pk == pk), None)

    def chosen_template(self):
        return self.templates.get(self.cleaned_data.get("template"))


def uploaded_attachments(files) -> list[tuple[str, str, bytes]]:
    """The reply's files as (filename, content type, bytes) for tickets.services.reply; limits raise Invalid."""
    from postdesk.core.errors import Invalid

    uploads = files.getlist("attachments") if files else []
    uploads = [f for f in uploads if f.name]
    if len(uploads) > MAX_ATTACHMENTS:
        raise Invalid(f"at most {MAX_ATTACHMENTS} files per reply", field="attachments")
    if sum(f.size or 0 for f in uploads) > MAX_ATTACHMENT_BYTES:
        raise Invalid(
            f"attachments may be {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB together", field="attachments"
        )
    out = []
    for f in uploads:
        content_type = (f.content_type or "").strip().lower()
        if not _MIME_TYPE.match(content_type):
            content_type = "application/octet-stream"
        out.append((f.name, content_type, f.read()))
    return out


class TransferForm(forms.Form):
    agent = forms.ChoiceField(label="Hand to")

    def __init__(self, *args, project, exclude=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.candidates = {u.username: u for u in transfer_candidates(project, exclude)}
        self.fields["agent"].choices = [
            (u.username, f"{u.display_name} ({u.get_role_display().lower()})")
            for u in self.candidates.values()
        ]

    def user(self):
        return self.candidates[self.cleaned_data["agent"]]


class CloseForm(forms.Form):
    substatus = forms.ChoiceField(
        label="Outcome",
        choices=[(Substatus.SUCCESSFUL, "Successful"), (Substatus.UNSUCCESSFUL, "Unsuccessful")],
        initial=Substatus.SUCCESSFUL,
    )


class TicketFilterForm(forms.Form):
    q = forms.CharField(label="Number or title", required=False, max_length=200)
    status = forms.ChoiceField(
        label="Status",
        required=False,
        choices=[("open", "Open"), ("closed", "Closed"), ("all", "All")],
        initial="open",
    )
    type = forms.TypedChoiceField(label="Type", required=False, coerce=int, empty_value=None)
    mine = forms.BooleanField(label="Only mine", required=False)

    def __init__(self, *args, ticket_types=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["type"].choices = [("", "Any type")] + [
            (t.pk, f"{t.label} ({t.project.key})") for t in ticket_types
        ]
