"""Django's SQLite backend with a queue for writers.

SQLite lets one writer in at a time; the others wait in its busy handler, which sleeps in growing steps (1, 2, 5,
10, ... 100 ms) and retries. With several worker processes writing (inbound processing, sending, campaigns), the
lock is then often free while every waiter sleeps. Here each write transaction (BEGIN IMMEDIATE, which the settings
use) first takes an exclusive lock on `<database>-writer.lock` with flock(2): waiters sleep in the kernel and the
next one wakes as soon as the lock is released. The lock only orders writers: SQLite still decides, so a process
that waits longer than lock.WAIT_SECONDS goes on to SQLite's own waiting as before."""

from __future__ import annotations

from django.db.backends.sqlite3 import base

from postdesk.core.sqlite.lock import WriterLock


class DatabaseWrapper(base.DatabaseWrapper):
    def _writer_lock(self) -> WriterLock | None:
        lock = getattr(self, "_postdesk_writer_lock", None)
        if lock is None and self.transaction_mode == "IMMEDIATE" and not self.is_in_memory_db():
            lock = self._postdesk_writer_lock = WriterLock(f"{self.settings_dict['NAME']}-writer.lock")
        return lock

    def _start_transaction_under_autocommit(self):
        lock = self._writer_lock()
        if lock is not None:
            lock.acquire()
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            if lock is not None:
                lock.release()
            raise

    def _release_writer(self) -> None:
        lock = getattr(self, "_postdesk_writer_lock", None)
        if lock is not None:
            lock.release()

    def _commit(self):
        try:
            return super()._commit()
        finally:
            self._release_writer()

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self._release_writer()

    def _close(self):
        try:
            return super()._close()
        finally:
            lock = getattr(self, "_postdesk_writer_lock", None)
            if lock is not None:
                lock.close()
                self._postdesk_writer_lock = None
