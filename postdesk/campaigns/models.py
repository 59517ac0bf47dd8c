from django.conf import settings
from django.db import models
from django.db.models import Q

from postdesk.core import clock


class Campaign(models.Model):
    """A mass email: one template sent to a list of recipients through a validated mass-email account."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        SENDING = "sending"
        PAUSED = "paused"
        DONE = "done"
        CANCELLED = "cancelled"

    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="campaigns")
    account = models.ForeignKey("mailboxes.EmailAccount", on_delete=models.PROTECT, related_name="campaigns")
    template = models.ForeignKey("projects.Template", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    track_opens = models.BooleanField(default=True)
    track_clicks = models.BooleanField(default=True)
    total = models.PositiveIntegerField(default=0)
    sent = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)  # suppressed addresses
    links = models.JSONField(default=list, blank=True)  # tracked link targets, by index (tokens carry the index)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=clock.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)


class CampaignRecipient(models.Model):
    class State(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"  # claimed by a sender; recovery decides from the relay's log whether it went
        SENT = "sent"
        FAILED = "failed"
        SKIPPED = "skipped"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="recipients")
    address = models.CharField(max_length=320)
    fields = models.JSONField(default=dict, blank=True)
    record = models.ForeignKey(
        "records.Record", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    email = models.ForeignKey(
        "emails.Email", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    error = models.TextField(blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["campaign", "state", "id"], condition=~Q(state="sent"), name="recipient_todo"
            )
        ]


class Suppression(models.Model):
    """Addresses that must not receive mass email (unsubscribed, bounced hard, complained, erased). Only a hash of the
    normalised address is stored, so an erased address stays unknown while still blocked."""

    class Reason(models.TextChoices):
        UNSUBSCRIBED = "unsubscribed"
        BOUNCED = "bounced"
        COMPLAINED = "complained"
        ERASED = "erased"

    project = models.ForeignKey(
        "projects.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    address_hash = models.CharField(max_length=64)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "address_hash"], name="suppression_unique")]
