"""Background jobs (huey). One Huey instance, its storage chosen by POSTDESK_BROKER_URL: huey's SQLite storage in the
data directory by default, Redis to scale out; the same job code for both.

Jobs are named functions that take ids, reload their rows and are safe to run twice. Queue them with
``on_commit(job, *ids)`` from inside a transaction: they are sent only after it commits.
"""

from __future__ import annotations

import functools
import logging
from urllib.parse import urlsplit

from django.conf import settings
from django.db import close_old_connections, transaction
from huey import MemoryHuey, RedisHuey, SqliteHuey, crontab  # noqa: F401  (crontab re-exported for tasks modules)

log = logging.getLogger(__name__)


def make_huey(url: str, immediate: bool = False):
    if url.startswith("memory://") or immediate:
        return MemoryHuey("postdesk", immediate=immediate)
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        # The job store is a doorbell, not the record: work lives in the database (pending rows, queued emails) and
        # periodic sweeps pick up anything whose job was lost, so job writes need no fsync.
        return SqliteHuey("postdesk", filename=path, fsync=False, journal_mode="wal", timeout=30)
    parts = urlsplit(url)
    return RedisHuey("postdesk", url=url, blocking=True) if parts.scheme.startswith("redis") else None


huey = make_huey(settings.CONFIG.broker_url, immediate=settings.JOBS_IMMEDIATE)


def _with_db(fn):
    @functools.wraps(fn)
    def inner(*args, **kwargs):
        if not huey.immediate:
            close_old_connections()
        try:
            return fn(*args, **kwargs)
        finally:
            if not huey.immediate:
                close_old_connections()

    return inner


def job(**options):
    """Declare a background job: ``@job(retries=3, retry_delay=10)``."""

    def decorator(fn):
        task = huey.task(name=f"{fn.__module__}.{fn.__name__}", **options)(_with_db(fn))
        task.call_local = fn
        return task

    return decorator


def periodic_job(schedule, **options):
    def decorator(fn):
        task = huey.periodic_task(schedule, name=f"{fn.__module__}.{fn.__name__}", **options)(_with_db(fn))
        task.call_local = fn
        return task

    return decorator


def on_commit(task, *args, **kwargs) -> None:
    """Queue ``task(*args)`` once the current transaction commits (at once when there is none)."""
    transaction.on_commit(functools.partial(_enqueue, task, args, kwargs))


def _enqueue(task, args, kwargs):
    try:
        task(*args, **kwargs)
    except Exception:  # the job store is down: recovery loops pick the work up from the database later
        log.exception("could not queue %s", getattr(task, "name", task))
