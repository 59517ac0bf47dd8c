"""Background jobs (huey). One Huey instance, its storage chosen by POSTDESK_BROKER_URL: huey's SQLite storage in the
data directory by default, Redis to scale out; the same job code for both.

Jobs are named functions that take ids, reload their rows and are safe to run twice. Queue them with
``on_commit(job, *ids)`` from inside a transaction: they are sent only after it commits.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import select
import stat
import threading
from urllib.parse import urlsplit

from django.conf import settings
from django.db import close_old_connections, transaction
from huey import MemoryHuey, RedisHuey, SqliteHuey, crontab  # noqa: F401  (crontab re-exported for tasks modules)
from huey.storage import SqliteStorage

log = logging.getLogger(__name__)


class Doorbell:
    """Wakes an idle worker the moment a job is queued, instead of leaving it to find the job at its next poll
    (huey's SQLite storage is polled; Redis has a blocking pop of its own).

    A named pipe next to the job store: whoever queues a job writes one byte to it; idle workers wait on it with
    ``select`` and the one that reads the byte looks for the job. Every worker process of every consumer on the
    machine shares the pipe, so one byte wakes one of them. Nothing depends on it: a byte that cannot be written
    (no worker running, the pipe full) is dropped and the workers' fallback poll finds the job."""

    WAIT_SECONDS = 0.25  # the fallback poll: a job whose ring was lost waits at most this long

    def __init__(self, path: str):
        self.path = path
        self._read_fd: int | None = None
        self._keep_fd: int | None = None
        self._write_fd: int | None = None
        self._write_pid = 0
        self._lock = threading.Lock()

    def listen(self) -> None:
        """Open the pipe for waiting (a worker, before it forks its processes: they share it)."""
        try:
            os.mkfifo(self.path, 0o600)
        except FileExistsError:
            if not stat.S_ISFIFO(os.stat(self.path).st_mode):
                raise RuntimeError(f"{self.path} exists and is not a named pipe") from None
        self._read_fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        # a writer of our own, kept open, so the pipe never reads as closed (which select reports as readable)
        self._keep_fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)

    @property
    def listening(self) -> bool:
        return self._read_fd is not None

    def wait(self, timeout: float) -> bool:
        """Wait for a ring (at most ``timeout`` seconds); True when this worker took one."""
        if select.select([self._read_fd], [], [], timeout)[0]:
            try:
                return bool(os.read(self._read_fd, 1))
            except BlockingIOError:  # another worker took it
                return False
        return False

    def ring(self) -> None:
        with self._lock:
            if self._write_fd is None or self._write_pid != os.getpid():
                try:
                    self._write_fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
                    self._write_pid = os.getpid()
                except OSError:  # no pipe yet, or nobody listening (ENXIO): the poll will do
                    self._write_fd = None
                    return
            try:
                os.write(self._write_fd, b"!")
            except BlockingIOError:  # the pipe is full: plenty of rings are waiting to be read already
                pass
            except OSError as exc:  # EPIPE: every reader is gone; open again next time
                if exc.errno == errno.EPIPE:
                    os.close(self._write_fd)
                    self._write_fd = None


class RingingSqliteStorage(SqliteStorage):
    """huey's SQLite job store with a doorbell: queueing rings it, and a listening worker's dequeue waits on it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.doorbell = Doorbell(self.filename + ".bell")

    @property
    def blocking(self) -> bool:  # huey's worker sleeps between polls only when the store does not block
        return self.doorbell.listening

    def enqueue(self, data, priority=None):
        super().enqueue(data, priority)
        self.doorbell.ring()

    def dequeue(self):
        data = super().dequeue()
        if data is None and self.doorbell.listening and self.doorbell.wait(Doorbell.WAIT_SECONDS):
            data = super().dequeue()
        return data


class RingingSqliteHuey(SqliteHuey):
    storage_class = RingingSqliteStorage


def make_huey(url: str, immediate: bool = False):
    if url.startswith("memory://") or immediate:
        return MemoryHuey("postdesk", immediate=immediate)
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        # The job store is a doorbell, not the record: work lives in the database (pending rows, queued emails) and
        # periodic sweeps pick up anything whose job was lost, so job writes need no fsync.
        return RingingSqliteHuey("postdesk", filename=path, fsync=False, journal_mode="wal", timeout=30)
    parts = urlsplit(url)
    return RedisHuey("postdesk", url=url, blocking=True) if parts.scheme.startswith("redis") else None


huey = make_huey(settings.CONFIG.broker_url, immediate=settings.JOBS_IMMEDIATE)


def listen_for_jobs() -> None:
    """In the worker, before its processes fork: wait on the job store's doorbell instead of polling it."""
    doorbell = getattr(huey.storage, "doorbell", None)
    if doorbell is not None and not doorbell.listening:
        doorbell.listen()


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
