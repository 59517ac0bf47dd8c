from django.db import models

from postdesk.core import clock


class RetentionRun(models.Model):
    """One run of automatic deletion (retention.services.run). Counts are saved with every batch, so a run that was
    killed midway shows what it did; its finished_at stays empty and the next run finishes the work."""

    started_at = models.DateTimeField(default=clock.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    as_of = models.DateTimeField()
    dry_run = models.BooleanField(default=False)
    counts = models.JSONField(default=dict)  # totals: emails, tickets, records, raw_messages, ...
    details = models.JSONField(default=dict)  # {"projects": {key: counts}, "maintenance": {...}}
    error = models.TextField(blank=True)  # why the run stopped, when it did not finish

    def __str__(self):
        return f"retention run {self.pk} as of {self.as_of:%Y-%m-%d %H:%M}"
