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


@job()
def process_spool() -> int:
    """Move spooled messages into the database and process them, a batch at a time, until the spool is empty
    (several of these run at once: each claims its own messages)."""
    total = 0
    while True:
        ids = processing.transfer_spool(processing.BATCH)
        if ids is None:
            return total
        if ids:
            total += processing.process(ids)


@periodic_job(crontab(minute="*"))
def sweep_incoming() -> int:
    """Messages still pending a while after they were stored lost their job: process them now."""
    from postdesk.inbound import spool

    total = process_spool.call_local() if spool.enabled() else 0
    while True:
        batch = processing.pending_ids(limit=processing.BATCH, older_than_seconds=SWEEP_AFTER_SECONDS)
        if not batch or processing.process(batch) == 0:
            return total
        total += len(batch)


def recover() -> None:
    """At worker start-up: everything stored but not processed (e.g. acknowledged just before a crash)."""
    from postdesk.inbound import spool

    if spool.enabled():
        process_spool()
    ids = processing.pending_ids(limit=100_000)
    for start in range(0, len(ids), processing.BATCH):
        process_incoming(ids[start : start + processing.BATCH])
