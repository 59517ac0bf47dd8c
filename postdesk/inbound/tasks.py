"""Inbound jobs: process stored messages; sweep up anything whose job was lost (crash between commit and queueing,
job store down); recovery at worker start-up."""

from postdesk.core.jobs import crontab, job, periodic_job
from postdesk.inbound import processing

SWEEP_AFTER_SECONDS = 10


@job(retries=3, retry_delay=5)
def process_incoming(ids: list[int] | None = None) -> int:
    """Process these IncomingMessage ids, or (without ids) every pending message."""
    if ids is not None:
        return processing.process(ids)
    total = 0
    while True:
        batch = processing.pending_ids(limit=processing.BATCH)
        if not batch:
            return total
        done = processing.process(batch)
        total += done
        if done == 0:
            return total


@periodic_job(crontab(minute="*"))
def sweep_incoming() -> int:
    """Messages still pending a while after they were stored lost their job: process them now."""
    total = 0
    while True:
        batch = processing.pending_ids(limit=processing.BATCH, older_than_seconds=SWEEP_AFTER_SECONDS)
        if not batch or processing.process(batch) == 0:
            return total
        total += len(batch)


def recover() -> None:
    """At worker start-up: everything stored but not processed (e.g. acknowledged just before a crash)."""
    ids = processing.pending_ids(limit=100_000)
    for start in range(0, len(ids), processing.BATCH):
        process_incoming(ids[start : start + processing.BATCH])
