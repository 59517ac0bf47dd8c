from django.db import models
from django.db.models import Q

from postdesk.core import clock


class IncomingMessage(models.Model):
    """A message accepted by the listener (SMTP, LMTP or HTTP), stored durably before the 250, processed by the worker.

    One row per project the message was addressed to; copies share one RawMessage."""

    class State(models.TextChoices):
        PENDING = "pending"
        DONE = "done"
        FAILED = "failed"  # processing raised: kept, retried by recovery, shown to supervisors

    received_at = models.DateTimeField(default=clock.now)
    protocol = models.CharField(max_length=8, default="smtp")
    peer = models.CharField(max_length=100, blank=True)
    helo = models.CharField(max_length=255, blank=True)
    account = models.ForeignKey(
        "mailboxes.EmailAccount", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    mail_from = models.CharField(max_length=998, blank=True)
    rcpt_to = models.JSONField(default=list)
    raw = models.ForeignKey("emails.RawMessage", null=True, on_delete=models.SET_NULL, related_name="+")
    dedup_key = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001 - NULL: no Message-ID, no dedup
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    email = models.ForeignKey(
        "emails.Email", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    spool_key = models.CharField(max_length=40, null=True, blank=True)  # noqa: DJ001 - the spool row it came from

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "dedup_key"], condition=Q(dedup_key__isnull=False), name="incoming_dedup"
            ),
            models.UniqueConstraint(
                fields=["spool_key", "project"], condition=Q(spool_key__isnull=False), name="incoming_spool_once"
            ),
        ]
        indexes = [models.Index(fields=["state", "id"], condition=~Q(state="done"), name="incoming_pending")]


class AutoResponseLog(models.Model):
    """Automatic responses sent, to limit them per sender per day (loop guard)."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    address = models.CharField(max_length=320)
    at = models.DateTimeField(default=clock.now)

    class Meta:
        indexes = [models.Index(fields=["project", "address", "at"])]
