from django.conf import settings
from django.db import models


class DailyEmailStats(models.Model):
    """Pre-aggregated counters for user-based statistics: one row per project, agent, UTC day and email kind
    (agent, disposition, mass). Services increment them when an email is sent or an event is first seen."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    day = models.DateField()
    kind = models.CharField(max_length=12)  # agent | disposition | mass
    sent = models.PositiveIntegerField(default=0)
    response = models.PositiveIntegerField(default=0)
    delivered = models.PositiveIntegerField(default=0)
    dropped = models.PositiveIntegerField(default=0)
    bounced = models.PositiveIntegerField(default=0)
    opened = models.PositiveIntegerField(default=0)
    link_clicks = models.PositiveIntegerField(default=0)
    marked_as_spam = models.PositiveIntegerField(default=0)
    unsubscribed = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user", "day", "kind"], name="daily_stats_unique"),
        ]
        indexes = [models.Index(fields=["project", "day"])]
