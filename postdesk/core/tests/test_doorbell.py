"""The job store's doorbell: queueing a job wakes an idle worker at once; nothing breaks when no worker listens."""

import os
import threading

import pytest

from postdesk.core.jobs import Doorbell, RingingSqliteStorage


def test_ringing_without_a_pipe_or_a_listener_is_harmless(tmp_path):
    bell = Doorbell(str(tmp_path / "jobs.bell"))
    bell.ring()  # no pipe at all
    os.mkfifo(tmp_path / "jobs.bell")
    bell.ring()  # a pipe nobody reads (ENXIO on open)
    assert not bell.listening


def test_a_ring_wakes_one_waiting_worker(tmp_path):
    listener = Doorbell(str(tmp_path / "jobs.bell"))
    listener.listen()
    assert listener.listening
    assert listener.wait(0.01) is False  # nothing rang
    Doorbell(str(tmp_path / "jobs.bell")).ring()
    assert listener.wait(5) is True
    assert listener.wait(0.01) is False  # one ring, one wake-up


def test_a_file_in_the_way_is_refused(tmp_path):
    (tmp_path / "jobs.bell").write_text("not a pipe")
    with pytest.raises(RuntimeError, match="not a named pipe"):
        Doorbell(str(tmp_path / "jobs.bell")).listen()


def test_a_listening_store_hands_out_a_job_queued_by_another_process_while_it_waits(tmp_path):
    path = str(tmp_path / "jobs.sqlite3")
    worker = RingingSqliteStorage("postdesk", filename=path)
    assert worker.blocking is False  # polls until it listens
    worker.doorbell.listen()
    assert worker.blocking is True
    assert worker.dequeue() is None  # an empty store: waits for one fallback period, then answers None

    got = []
    waiting = threading.Thread(target=lambda: got.append(worker.dequeue()))
    waiting.start()
    RingingSqliteStorage("postdesk", filename=path).enqueue(b"job-1")  # the web process, say
    waiting.join(10)
    assert got == [b"job-1"]
