"""Processing slots (SQLite installations): at most one spool-processing job per slot (one per core by default);
a job that finds every slot taken leaves the mail to the jobs that hold them, and a holder looks at the spool
again after letting its slot go, so no message waits for the periodic sweep."""

import dataclasses
from contextlib import ExitStack

import pytest
from django.conf import settings

from postdesk.emails.models import Email
from postdesk.inbound import intake, processing, spool, tasks

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not spool.enabled(), reason="the spool exists on SQLite installations only"),
]


@pytest.fixture
def two_slots(monkeypatch):
    monkeypatch.setattr(settings, "CONFIG", dataclasses.replace(settings.CONFIG, inbound_processes=2))


def message(n: int) -> bytes:
    return (
        f"From: Customer <customer{n}@example.com>\r\nTo: support@acme.test\r\nSubject: Order {n}\r\n"
        f"Message-ID: <slot-{n}@example.com>\r\n\r\nHello, where is order {n}?\r\n"
    ).encode()


def spool_messages(forwarding, numbers) -> None:
    deliveries = [intake.Delivery(raw=message(n), mail_from="c@example.com", rcpt_to=["support@acme.test"],
                                  accounts=[forwarding]) for n in numbers]
    spool.put(deliveries, lambda moment: moment.isoformat())


def take_every_slot(stack: ExitStack) -> list:
    return [stack.enter_context(spool.processing_slot()) for _ in range(spool.processing_slots())]


def test_one_slot_per_process_at_most_and_let_go_on_exit(two_slots):
    assert spool.processing_slots() == 2
    with ExitStack() as stack:
        assert take_every_slot(stack) == [0, 1]
        assert not spool.slot_free()
        with spool.processing_slot() as third:
            assert third is None
    assert spool.slot_free()


def test_the_default_is_one_slot_per_core(monkeypatch):
    import os

    monkeypatch.setattr(settings, "CONFIG", dataclasses.replace(settings.CONFIG, inbound_processes=0))
    assert spool.processing_slots() == (os.cpu_count() or 1)


def test_a_job_finding_every_slot_taken_leaves_the_mail_for_the_holders(two_slots, forwarding):
    spool_messages(forwarding, range(3))
    with ExitStack() as stack:
        take_every_slot(stack)
        assert tasks.process_spool.call_local() == 0
        intake.notify_spool()  # no free slot: no job queued (in tests a job would run at once)
        assert spool.unclaimed() == 3 and Email.objects.count() == 0
    assert tasks.process_spool.call_local() == 3
    assert spool.pending() == 0 and Email.objects.count() == 3


def test_the_listener_queues_a_job_when_a_slot_is_free(two_slots, forwarding):
    spool_messages(forwarding, range(2))
    intake.notify_spool()
    assert spool.pending() == 0 and Email.objects.count() == 2


def test_a_holder_looks_again_after_letting_its_slot_go(two_slots, forwarding, monkeypatch):
    """Mail spooled after the holder's last look, whose own job found every slot taken, is processed by the
    holder before it returns."""
    spool_messages(forwarding, range(2))
    process_spooled = processing.process_spooled
    arrivals = iter([[10]])

    def look_then_mail_arrives(*args):
        ids = process_spooled(*args)
        if ids is None:
            for numbers in arrivals:  # once: the spool looked empty, then a message came in
                spool_messages(forwarding, numbers)
        return ids

    monkeypatch.setattr(processing, "process_spooled", look_then_mail_arrives)
    assert tasks.process_spool.call_local() == 3
    assert spool.pending() == 0


def test_the_flow_control_counts_only_mail_no_worker_has_taken(forwarding):
    spool_messages(forwarding, range(5))
    assert spool.unclaimed() == 5
    spool.claim(2)
    assert spool.unclaimed() == 3 and spool.pending() == 5


def test_claims_of_a_killed_worker_are_taken_over_at_once(two_slots, forwarding):
    """A worker killed mid-batch leaves its claims behind; its slot's lock died with it, so the next claim takes
    them back (no CLAIM_TIMEOUT wait)."""
    spool_messages(forwarding, range(4))
    spool.claim(3, slot=1)  # the killed worker's batch: slot 1, whose lock nobody holds now
    assert spool.unclaimed() == 1
    assert tasks.process_spool.call_local() == 4
    assert spool.pending() == 0 and Email.objects.count() == 4


def test_claims_of_a_live_holder_are_left_alone(two_slots, forwarding):
    spool_messages(forwarding, range(4))
    with spool.processing_slot() as live:
        assert live == 0
        token, rows = spool.claim(3, slot=live)  # a live worker's batch in progress
        assert len(rows) == 3
        with spool.processing_slot() as other:
            assert other == 1
            assert [r[0] for r in spool.claim(10, slot=other)[1]] == [rows[-1][0] + 1]
            assert spool.unclaimed() == 0 and spool.pending() == 4


def test_a_spooled_message_handed_over_twice_is_stored_once(forwarding):
    """The worker died after its commit but before the spool forgot the batch: the spool key recognises it, even for
    a message without a Message-ID (no dedup key)."""
    from postdesk.inbound.models import IncomingMessage

    raw = b"From: someone@example.com\r\nTo: support@acme.test\r\nSubject: no id\r\n\r\nHello\r\n"
    spool.put([intake.Delivery(raw=raw, mail_from="c@example.com", rcpt_to=["support@acme.test"],
                               accounts=[forwarding])], lambda moment: moment.isoformat())
    release = spool.release
    spool.release = lambda ids: None  # the crash: the batch stays in the spool
    try:
        assert len(processing.process_spooled()) == 1
    finally:
        spool.release = release
    spool.connect().execute("UPDATE spool SET claimed_by = NULL")
    assert processing.process_spooled() == []
    assert IncomingMessage.objects.count() == 1 and Email.objects.count() == 1
    assert spool.pending() == 0


def test_a_message_that_cannot_be_stored_is_set_aside_and_holds_up_nothing(forwarding, monkeypatch):
    from postdesk.inbound import intake as intake_module

    spool_messages(forwarding, range(4))
    store = intake_module.store

    def failing_store(delivery):
        if b"Order 2" in delivery.raw:
            raise ValueError("cannot be stored")
        return store(delivery)

    monkeypatch.setattr(intake_module, "store", failing_store)
    assert len(processing.process_spooled()) == 3
    assert spool.pending() == 1 and spool.unclaimed() == 0  # kept in the spool, out of the way
    assert processing.process_spooled() is None
    monkeypatch.setattr(intake_module, "store", store)
    spool.connect().execute("UPDATE spool SET claimed_at = claimed_at - ?", (spool.CLAIM_TIMEOUT + 1,))
    assert len(processing.process_spooled()) == 1
    assert spool.pending() == 0 and Email.objects.count() == 4


def test_a_batch_that_cannot_be_stored_at_all_stays_claimed_for_the_next_job(two_slots, forwarding, monkeypatch):
    from postdesk.inbound import intake as intake_module

    spool_messages(forwarding, range(3))
    store = intake_module.store

    def broken(delivery):
        raise OSError("disk full")

    monkeypatch.setattr(intake_module, "store", broken)
    with pytest.raises(OSError):
        tasks.process_spool.call_local()
    assert spool.pending() == 3 and Email.objects.count() == 0
    monkeypatch.setattr(intake_module, "store", store)
    assert tasks.process_spool.call_local() == 3  # the slot's claims were taken back at once


def test_the_sweep_goes_on_when_the_spool_fails(forwarding, monkeypatch):
    from postdesk.inbound.models import IncomingMessage

    def broken(*args):
        raise OSError("spool unavailable")

    monkeypatch.setattr(processing, "process_spooled", broken)
    monkeypatch.setattr(tasks, "SWEEP_AFTER_SECONDS", 0)
    stored = intake.store_now(intake.Delivery(raw=message(1), mail_from="c@example.com",
                                              rcpt_to=["support@acme.test"], accounts=[forwarding]))
    IncomingMessage.objects.filter(pk__in=stored.ids).update(state=IncomingMessage.State.PENDING)
    Email.objects.all().delete()
    tasks.sweep_incoming.call_local()
    assert IncomingMessage.objects.get(pk=stored.ids[0]).state == IncomingMessage.State.DONE
