"""Webhook jobs: deliver after the commit that wrote the deliveries, a sweep every minute for retries (and any job that
was lost), and a daily prune of the delivery log. Nothing depends on a job surviving: the rows are the truth."""

from postdesk.core.jobs import crontab, huey, job, periodic_job
from postdesk.integrations import delivery


@job()
def deliver_webhooks(endpoint_ids: list[int]) -> int:
    """Queued once per transaction that emitted events: one job per endpoint, so a slow receiver holds up only
    itself."""
    if len(endpoint_ids) == 1 or huey.immediate:
        return sum(delivery.run(pk) for pk in endpoint_ids)
    for pk in endpoint_ids:
        deliver_endpoint(pk)
    return 0


@job()
def deliver_endpoint(endpoint_id: int) -> int:
    return delivery.run(endpoint_id)


@periodic_job(crontab(minute="*"))
def deliver_due() -> int:
    """Endpoints with deliveries whose time has come (retries after backoff, and work whose job was lost)."""
    ids = delivery.due_endpoint_ids()
    for pk in ids:
        deliver_endpoint(pk)
    return len(ids)


@periodic_job(crontab(hour="3", minute="41"))
def prune_deliveries() -> int:
    return delivery.prune()


def recover() -> None:
    deliver_due.call_local()
