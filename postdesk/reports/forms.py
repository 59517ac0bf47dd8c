"""Filter forms of the supervisor's reports. They are GET forms: every page can be bookmarked and exported with the
same query string. Defaults (the first project, the current month) are filled in before binding, so the form shows
them and the links built from it carry them."""

from __future__ import annotations

import datetime as dt

from django import forms

from postdesk.core import clock
from postdesk.emails.models import Direction, Kind, Status
from postdesk.inbound.languages import LANGUAGE_NAMES
from postdesk.projects.models import Project
from postdesk.tickets.models import Status as TicketStatus

MAX_DAYS = 3660  # the statistics API's limit too


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self):
        super().__init__(format="%Y-%m-%d")


def month_so_far(today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    today = today or clock.today()
    return today.replace(day=1), today


def day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def bind(form_class, request, **kwargs):
    """The form bound to the query string, with the defaults for the parameters it does not name (the first project,
    the current month)."""
    data = request.GET.copy()
    projects = kwargs.get("projects") or []
    if not data.get("project") and projects:
        data["project"] = projects[0].key
    for key, value in form_class.defaults().items():
        if key not in data:
            data[key] = value
    return form_class(data, **kwargs)


class SelectText(forms.CharField):
    """A text value chosen from a list that depends on the project: a value of another project is not an error, it
    only matches nothing (the project selector and this field change in the same submit)."""

    widget = forms.Select

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(*args, **kwargs)

    def set_choices(self, choices):
        self.widget.choices = [("", "Any"), *choices]


class ReportForm(forms.Form):
    """A project selector (key); the first project by default."""

    project = forms.ChoiceField(label="Project", required=False)

    def __init__(self, data=None, *, projects: list[Project]):
        super().__init__(data)
        self.projects = {p.key: p for p in projects}
        self.fields["project"].choices = [(p.key, f"{p.key} · {p.name}") for p in projects]
        key = (self.data.get("project") or "") if self.is_bound else ""
        self.selected = self.projects.get(key) or (projects[0] if projects else None)
        self.setup(self.selected)

    @classmethod
    def defaults(cls) -> dict:
        return {}

    def setup(self, project: Project | None) -> None:
        """Choices that depend on the selected project."""

    def clean_project(self):
        key = self.cleaned_data.get("project")
        return self.projects.get(key) if key else self.selected

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end:
            if start > end:
                self.add_error("date_from", "The start date is after the end date.")
            elif (end - start).days > MAX_DAYS:
                self.add_error("date_from", "At most ten years at once.")
        return data


class PeriodForm(ReportForm):
    """A project and a period of UTC days (both ends included), the current month by default."""

    date_from = forms.DateField(label="From", widget=DateInput())
    date_to = forms.DateField(label="To", widget=DateInput())

    @classmethod
    def defaults(cls) -> dict:
        start, end = month_so_far()
        return {"date_from": start.isoformat(), "date_to": end.isoformat()}


class EmailLogForm(ReportForm):
    direction = forms.ChoiceField(
        label="Direction", required=False, choices=[("", "Any"), *Direction.choices]
    )
    sender = forms.CharField(label="Sender", required=False, max_length=320)
    recipient = forms.CharField(label="Recipient", required=False, max_length=320)
    subject = forms.CharField(label="Subject", required=False, max_length=200)
    language = forms.ChoiceField(label="Language", required=False)
    queue = SelectText(label="Queue", max_length=100)
    ticket = forms.CharField(label="Ticket number", required=False, max_length=40)
    kind = forms.ChoiceField(label="Kind", required=False, choices=[("", "Any"), *Kind.choices])
    status = forms.ChoiceField(label="Status", required=False, choices=[("", "Any"), *Status.choices])
    date_from = forms.DateField(label="From", required=False, widget=DateInput())
    date_to = forms.DateField(label="To", required=False, widget=DateInput())
    include_ticketed = forms.BooleanField(label="Also related to tickets", required=False)

    @classmethod
    def defaults(cls) -> dict:
        return PeriodForm.defaults()

    def setup(self, project):
        names = sorted(LANGUAGE_NAMES.items(), key=lambda item: item[1])
        self.fields["language"].choices = [("", "Any"), *((code, f"{name} ({code})") for code, name in names)]
        queues = list(project.queues.values_list("name", flat=True)) if project else []
        self.fields["queue"].set_choices([(q, q) for q in queues])

    def filters(self, *, limit: int = 50, cursor: str | None = None):
        """The email API's filters (postdesk.emails.api.EmailFilters) for the valid form: one filtering for both."""
        from postdesk.emails.api import EmailFilters

        d = self.cleaned_data
        return EmailFilters(
            project=d["project"].key if d["project"] else "",
            direction=d["direction"] or None,
            sender=d["sender"] or None,
            recipient=d["recipient"] or None,
            subject=d["subject"] or None,
            language=d["language"] or None,
            queue=d["queue"] or None,
            ticket=d["ticket"] or None,
            kind=d["kind"] or None,
            status=d["status"] or None,
            date_from=day_start(d["date_from"]) if d["date_from"] else None,
            date_to=day_start(d["date_to"] + dt.timedelta(days=1)) if d["date_to"] else None,
            include_ticketed=d["include_ticketed"],
            limit=limit,
            cursor=cursor,
        )


class LabelChoices(forms.MultipleChoiceField):
    """Ticket type labels of the selected project; labels of another project are dropped, not refused."""

    widget = forms.CheckboxSelectMultiple

    def validate(self, value):
        pass

    def clean(self, value):
        value = super().clean(value)
        known = {str(k) for k, _ in self.choices}
        return [v for v in value if v in known]


class TicketReportForm(ReportForm):
    types = LabelChoices(label="Ticket type", required=False)
    agent = SelectText(label="Agent", max_length=150)
    status = forms.ChoiceField(label="Status", required=False, choices=[("", "Any"), *TicketStatus.choices])
    date_from = forms.DateField(label="Opened from", required=False, widget=DateInput())
    date_to = forms.DateField(label="Opened to", required=False, widget=DateInput())

    @classmethod
    def defaults(cls) -> dict:
        return PeriodForm.defaults()

    def setup(self, project):
        from postdesk.accounts.models import User

        labels = list(project.ticket_types.values_list("label", flat=True)) if project else []
        self.fields["types"].choices = [(label, label) for label in labels]
        agents = User.objects.filter(projectmember__project=project).order_by("username") if project else []
        self.fields["agent"].set_choices([(u.username, u.display_name) for u in agents])

    def filters(self):
        """The ticket API's filters (postdesk.tickets.api.TicketFilters) for the valid form; the labels apart."""
        from postdesk.tickets.api import TicketFilters

        d = self.cleaned_data
        return TicketFilters(
            project=d["project"].key if d["project"] else "",
            agent=d["agent"] or None,
            status=d["status"] or None,
            date_from=day_start(d["date_from"]) if d["date_from"] else None,
            date_to=day_start(d["date_to"] + dt.timedelta(days=1)) if d["date_to"] else None,
        )
