"""Outbound jobs: send queued emails, retry due ones, recover after a crash."""

from postdesk.core.jobs import crontab, job, periodic_job
from postdesk.outbound import sender

BATCH = 50


@job()
def send_emails(ids: list[int]) -> dict:
    return sender.deliver(ids)


@periodic_job(crontab(minute="*"))
def send_due() -> int:
    """Queued emails whose time has come (retries, and any whose job was lost); sends interrupted by a crash."""
    sender.recover_interrupted()
    ids = sender.due_ids()
    for start in range(0, len(ids), BATCH):
        send_emails(ids[start : start + BATCH])
    return len(ids)


def recover() -> None:
    send_due.call_local()
