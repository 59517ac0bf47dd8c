"""Forms of the agent workspace (emails side): turning an opened email into a new ticket or adding it to an existing
one, and the reply to an email that has no ticket yet (which makes one). Rules live in the services."""

from __future__ import annotations

from django import forms

from postdesk.tickets.forms import ReplyForm


class TicketFieldsMixin:
    """Type (from the project's ticket types) and title (defaulting to the subject) of the ticket an email becomes."""

    def add_ticket_fields(self, project, email):
        self.fields["ticket_type"] = forms.TypedChoiceField(
            label="Ticket type",
            coerce=int,
            required=False,
            empty_value=None,
            choices=[("", "No type")] + [(t.pk, t.label) for t in project.ticket_types.all()],
        )
        self.fields["title"] = forms.CharField(
            label="Title", required=False, max_length=500, initial=email.subject or "(no subject)"
        )
        self.ticket_types = {t.pk: t for t in project.ticket_types.all()}

    def ticket_type(self):
        return self.ticket_types.get(self.cleaned_data.get("ticket_type"))


class NewTicketForm(TicketFieldsMixin, forms.Form):
    create_record = forms.BooleanField(label="Create a customer record from the sender", required=False)

    def __init__(self, *args, project, email, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_ticket_fields(project, email)


class ExistingTicketForm(forms.Form):
    ticket = forms.CharField(label="Ticket number", max_length=40)
    create_record = forms.BooleanField(label="Create a customer record from the sender", required=False)


class EmailReplyForm(TicketFieldsMixin, ReplyForm):
    """A reply to an email without a ticket: the reply assigns it to a new ticket first (tutorial section 2)."""

    def __init__(self, *args, project, user, email, **kwargs):
        super().__init__(*args, project=project, user=user, **kwargs)
        self.add_ticket_fields(project, email)
