"""SQLite writers queue on a file lock (core/sqlite/base.py): held for exactly a write transaction, and a waiting
writer goes on as soon as the holder commits instead of sleeping in SQLite's busy handler."""

import threading
import time

import pytest
from django.db import connection, transaction

from postdesk.core.sqlite.lock import WriterLock

pytestmark = pytest.mark.skipif("connection.vendor != 'sqlite'")


def test_a_waiting_writer_goes_on_right_after_the_holder_releases(tmp_path):
    first, second = WriterLock(str(tmp_path / "w.lock")), WriterLock(str(tmp_path / "w.lock"))
    first.acquire()
    got = []

    def wait():
        second.acquire()
        got.append(time.monotonic())
        second.release()

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.15)
    assert not got  # still waiting
    released = time.monotonic()
    first.release()
    waiter.join(5)
    assert got and got[0] - released < 0.05
    first.close()
    second.close()


@pytest.mark.django_db(transaction=True)
def test_the_lock_is_held_for_a_write_transaction_only():
    with transaction.atomic():
        assert connection._postdesk_writer_lock.held
        with transaction.atomic():  # a savepoint: same lock
            assert connection._postdesk_writer_lock.held
    assert not connection._postdesk_writer_lock.held
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            raise RuntimeError("rolled back")
    assert not connection._postdesk_writer_lock.held
