from django.conf import settings
from django.db import models

from postdesk.core import clock


class Status(models.TextChoices):
    PARK = "park", "Open"
    CLOSED = "closed", "Closed"


class Substatus(models.TextChoices):
    WAITING4AGENT = "waiting4agent", "Waiting for agent"
    WAITING4ENTITY = "waiting4entity", "Waiting for customer"
    SUCCESSFUL = "successful", "Successful"
    UNSUCCESSFUL = "unsuccessful", "Unsuccessful"


class Ticket(models.Model):
    """A case: one or more email threads handled together. The counters and timestamps the ticket list shows are kept
    up to date by tickets.services (never computed by scans)."""

    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="tickets")
    number = models.CharField(max_length=40, unique=True)  # xxx-YYYYMMDD-zzzzzz
    type = models.ForeignKey(
        "projects.TicketType", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    title = models.CharField(max_length=500)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_tickets",
    )
    creator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    record = models.ForeignKey(
        "records.Record", null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PARK)
    substatus = models.CharField(max_length=16, choices=Substatus.choices, default=Substatus.WAITING4AGENT)
    soft_deadline = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(default=clock.now)  # first open time
    last_open_time = models.DateTimeField(null=True, blank=True)
    last_close_time = models.DateTimeField(null=True, blank=True)
    first_sent_time = models.DateTimeField(null=True, blank=True)
    last_sent_time = models.DateTimeField(null=True, blank=True)
    first_received_time = models.DateTimeField(null=True, blank=True)
    last_received_time = models.DateTimeField(null=True, blank=True)
    sent_count = models.PositiveIntegerField(default=0)
    received_count = models.PositiveIntegerField(default=0)
    sla_seconds = models.PositiveIntegerField(null=True, blank=True)  # first received -> first sent
    updated_at = models.DateTimeField(default=clock.now)
    unread = models.BooleanField(default=False)  # a new inbound email joined since the owner last looked

    class Meta:
        indexes = [
            models.Index(fields=["project", "-created_at", "-id"], name="ticket_project_created"),
            models.Index(fields=["project", "owner", "status", "-updated_at"], name="ticket_owner_status"),
            models.Index(fields=["project", "type", "-created_at"], name="ticket_type_created"),
            models.Index(fields=["project", "status", "-updated_at"], name="ticket_status_updated"),
        ]

    def __str__(self):
        return self.number

    @property
    def first_open_time(self):
        return self.created_at


class TicketSequence(models.Model):
    """The zzzzzz of ticket numbers: one counter per project and UTC day, incremented atomically (an UPSERT with
    RETURNING, the same statement on SQLite and PostgreSQL)."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    value = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "day"], name="ticket_sequence_unique")]
