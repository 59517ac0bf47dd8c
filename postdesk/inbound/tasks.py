"""Inbound jobs: process stored messages; sweep up anything whose job was lost (crash between commit and queueing,
job store down); recovery at worker start-up."""

import logging

from postdesk.core.jobs import crontab, job, periodic_job
from postdesk.inbound import processing

log = logging.getLogger(__name__)
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
    """Process spooled messages (into the database, processed, in one transaction per batch) until the spool is empty.
    At most one such job per processing slot runs (spool.processing_slot); one that finds them all taken leaves
    the mail to those, which take it on their next round."""
    from postdesk.inbound import spool

    total = 0
    shared = processing.SharedContexts()
    while True:
        with spool.processing_slot() as slot:
            if slot is None:
                return total
            while True:
                ids = processing.process_spooled(processing.BATCH, slot, shared)
                if ids is None:
                    break
                total += len(ids)
        # mail spooled after the last look, whose job found every slot taken while this one still held its slot
        if not spool.unclaimed():
            return total


@periodic_job(crontab(minute="*"))
def sweep_incoming() -> int:
    """Messages still pending a while after they were stored lost their job: process them now."""
    from postdesk.inbound import spool

    total = 0
    if spool.enabled():
        try:
            total = process_spool.call_local()
        except Exception:  # the spool's trouble (logged there) must not keep the pending rows below waiting
            log.exception("spool processing failed during the sweep")
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
