"""An exclusive flock(2) that orders SQLite writers of several processes (see base.py and inbound/spool.py)."""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager

WAIT_SECONDS = 20.0


class WriterLock:
    """An exclusive flock on a file next to the database; one per connection (flock locks belong to the open file,
    so two connections of one process exclude each other too)."""

    def __init__(self, path: str):
        self.path = path
        self.fd: int | None = None
        self.held = False

    def acquire(self) -> None:
        if self.held:
            return
        if self.fd is None:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self.held = True
            return
        except BlockingIOError:
            pass
        deadline = time.monotonic() + WAIT_SECONDS
        delay = 0.0002
        while time.monotonic() < deadline:
            time.sleep(delay)
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.held = True
                return
            except BlockingIOError:
                delay = min(delay * 2, 0.002)
        # a holder stuck for this long: leave the ordering to SQLite (its busy timeout still applies)

    def release(self) -> None:
        if self.held:
            self.held = False
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self.release()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    @contextmanager
    def held_for(self, conn):
        """A write transaction on a plain sqlite3 connection (isolation_level=None) under this lock."""
        self.acquire()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            self.release()
