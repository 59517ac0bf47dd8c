from django.db import models
from django.db.models import Q

from postdesk.core import clock
from postdesk.core.crypto import EncryptedTextField


class WebhookEndpoint(models.Model):
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=1000)
    events = models.JSONField(default=list)  # email, ticket
    secret = EncryptedTextField()
    enabled = models.BooleanField(default=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=clock.now)
    failing_since = models.DateTimeField(null=True, blank=True)  # first failure of the current streak
    last_success_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)  # a delivery run holds the endpoint until then

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "url"], name="webhook_url_unique")]
        ordering = ["created_at", "id"]

    def __str__(self):
        return self.url

    def subscribes_to(self, event: str) -> bool:
        """event: email.received, ticket.update, ...; subscriptions are by family (email, ticket)."""
        return event.split(".", 1)[0] in (self.events or [])


class WebhookDelivery(models.Model):
    class State(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"  # gave up after 24 hours

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=20)  # email | ticket
    ordering_key = models.CharField(max_length=64, blank=True)  # e.g. ticket:<id>: delivered in order per key
    payload = models.TextField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=clock.now)
    last_status = models.IntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["state", "next_attempt_at"], condition=Q(state="pending"), name="webhook_due"
            ),
            models.Index(fields=["endpoint", "-created_at"]),
            models.Index(
                fields=["endpoint", "ordering_key", "id"],
                condition=Q(state="pending"),
                name="webhook_pending_key",
            ),
        ]
