"""Retention jobs: automatic deletion once a day, and after a restart when the last run did not finish."""

import datetime as dt

from postdesk.core import clock
from postdesk.core.jobs import crontab, job, periodic_job
from postdesk.retention import services


@periodic_job(crontab(hour="3", minute="15"))
def daily_retention() -> dict:
    """Automatic deletion as of now, for every project with the setting on. Safe to run twice: the work is derived
    from the state."""
    return services.run().totals()


@job()
def resume_retention() -> dict:
    return services.run().totals()


def recover() -> None:
    """A run that was killed midway (no finished_at) in the last day: run again now (as of the real clock, never the
    moment a manual run was given)."""
    from postdesk.retention.models import RetentionRun

    last = RetentionRun.objects.filter(dry_run=False).order_by("-started_at", "-id").first()
    if last is not None and last.finished_at is None and last.started_at > clock.now() - dt.timedelta(days=1):
        resume_retention()
