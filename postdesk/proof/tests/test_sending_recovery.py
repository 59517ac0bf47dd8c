"""Crash recovery of sending, in one process, step by step: what the kill -9 tests (test_crash.py) found, pinned
down. The outbound sweep and the campaign sender each recover only their own emails, and a second campaign sender
starting while the first is still sending (the one-per-core jobs, the periodic continue_campaigns, a restart of one
worker of several) never sends a recipient a second copy."""

from __future__ import annotations

import datetime as dt

import pytest

from postdesk.campaigns import sender as campaign_sender
from postdesk.campaigns import services as campaign_services
from postdesk.campaigns.models import Campaign, CampaignRecipient
from postdesk.core import clock
from postdesk.emails.models import Email, Kind, Status
from postdesk.outbound import journal
from postdesk.outbound import sender as outbound_sender
from postdesk.outbound.pool import POOL

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_pools():
    POOL.clear()
    campaign_sender.POOL.clear()
    yield
    POOL.clear()
    campaign_sender.POOL.clear()


def start(project, account, count: int) -> Campaign:
    campaign = campaign_services.create_campaign(
        project=project,
        account=account,
        template=project.templates.get(name="news"),
        recipients=[{"email": f"r{i}@example.com", "fields": {"name": f"R{i}"}} for i in range(count)],
    )
    Campaign.objects.filter(pk=campaign.pk).update(status="sending")
    return campaign


def later(minutes: int) -> None:
    clock.set_now(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes))


def test_a_second_campaign_sender_starting_mid_send_gives_nobody_a_second_copy(project, mass, smtp_sink):
    campaign = start(project, mass, 40)
    prepared = campaign_sender.Prepared(campaign)
    endpoint = campaign_sender.relay_endpoint(mass)
    claimed = campaign_sender.claim(
        campaign, prepared, 10
    )  # sender A claimed a chunk and is about to send it
    campaign_sender.run(campaign.pk)  # sender B starts meanwhile (another job of the same campaign)
    campaign_sender.record(
        campaign, campaign_sender.send_chunk(campaign, prepared, claimed, endpoint)
    )  # A goes on
    campaign_sender.run(campaign.pk)
    addresses = [m.rcpt_tos[0] for m in smtp_sink.messages]
    assert sorted(addresses) == sorted(f"r{i}@example.com" for i in range(40))  # everyone once
    campaign.refresh_from_db()
    assert campaign.status == "done" and campaign.sent == 40


def test_a_recipient_claimed_again_after_a_temporary_failure_is_not_taken_over_by_a_second_sender(
    project, mass, smtp_sink
):
    campaign = start(project, mass, 3)
    prepared = campaign_sender.Prepared(campaign)
    endpoint = campaign_sender.relay_endpoint(mass)
    busy = {f"r{i}@example.com": "450 4.2.1 mailbox busy, try again later" for i in range(3)}
    smtp_sink.state.rcpt_replies.update(busy)
    first = campaign_sender.claim(campaign, prepared, 3)
    campaign_sender.record(campaign, campaign_sender.send_chunk(campaign, prepared, first, endpoint))
    assert CampaignRecipient.objects.filter(state="pending").count() == 3  # retried later
    smtp_sink.state.rcpt_replies.clear()
    later(30)
    again = campaign_sender.claim(campaign, prepared, 3)  # sender A claims them again, half an hour later
    campaign_sender.run(campaign.pk)  # sender B starts meanwhile
    campaign_sender.record(campaign, campaign_sender.send_chunk(campaign, prepared, again, endpoint))
    addresses = sorted(m.rcpt_tos[0] for m in smtp_sink.messages)
    assert addresses == ["r0@example.com", "r1@example.com", "r2@example.com"]


def test_a_campaign_is_not_done_while_recipients_are_still_being_sent(project, mass, smtp_sink):
    campaign = start(project, mass, 5)
    prepared = campaign_sender.Prepared(campaign)
    campaign_sender.claim(campaign, prepared, 2)  # another sender holds two recipients
    campaign_sender.run(campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == "sending" and len(smtp_sink.messages) == 3


def test_recipients_left_sending_by_a_crash_are_resolved_from_the_journal_once_the_claim_is_stale(
    project, mass, smtp_sink
):
    campaign = start(project, mass, 30)
    prepared = campaign_sender.Prepared(campaign)
    endpoint = campaign_sender.relay_endpoint(mass)
    claimed = campaign_sender.claim(campaign, prepared, 10)
    campaign_sender.send_chunk(campaign, prepared, claimed[:4], endpoint)  # transmitted 4, then died
    later(30)
    campaign_sender.run(campaign.pk)  # the restart
    addresses = [m.rcpt_tos[0] for m in smtp_sink.messages]
    assert len(addresses) == 30 and len(set(addresses)) == 30
    campaign.refresh_from_db()
    assert campaign.status == "done" and campaign.sent == 30
    assert CampaignRecipient.objects.filter(state="sent").count() == 30


def test_the_outbound_sweep_leaves_campaign_emails_to_the_campaign_sender(project, mass, smtp_sink):
    campaign = start(project, mass, 20)
    prepared = campaign_sender.Prepared(campaign)
    claimed = campaign_sender.claim(campaign, prepared, 10)  # the campaign sender died holding these
    later(30)
    assert outbound_sender.recover_interrupted() == {"retried": 0, "unconfirmed": 0}
    assert outbound_sender.due_ids() == []
    assert outbound_sender.deliver([e.pk for _, e in claimed]) == {}
    assert Email.objects.filter(campaign=campaign, status=Status.SENDING).count() == 10
    campaign_sender.run(campaign.pk)
    addresses = [m.rcpt_tos[0] for m in smtp_sink.messages]
    assert len(addresses) == 20 and len(set(addresses)) == 20


def test_an_agent_reply_interrupted_before_transmission_is_sent_once_after_recovery(
    project, sender_account, smtp_sink
):
    from postdesk.outbound.services import queue_email

    email = queue_email(
        project=project,
        account=sender_account,
        kind=Kind.AGENT_REPLY,
        to=["customer@example.com"],
        subject="Your order",
        text="Hello",
    )
    assert outbound_sender.claim([email.pk])  # claimed, then the process died before DATA
    assert outbound_sender.recover_interrupted() == {"retried": 0, "unconfirmed": 0}  # not stale yet
    later(5)
    assert outbound_sender.recover_interrupted() == {"retried": 1, "unconfirmed": 0}
    outbound_sender.deliver(outbound_sender.due_ids())
    assert len(smtp_sink.messages) == 1


def test_an_agent_reply_interrupted_after_transmission_started_is_never_sent_again(
    project, sender_account, smtp_sink
):
    from postdesk.outbound.services import queue_email

    email = queue_email(
        project=project,
        account=sender_account,
        kind=Kind.AGENT_REPLY,
        to=["customer@example.com"],
        subject="Your order",
        text="Hello",
    )
    outbound_sender.claim([email.pk])
    journal.record(email.pk, "data")  # DATA accepted, content on its way, then the process died
    later(5)
    assert outbound_sender.recover_interrupted() == {"retried": 0, "unconfirmed": 1}
    outbound_sender.deliver(outbound_sender.due_ids())
    email.refresh_from_db()
    assert email.status == Status.SENT and email.smtp_response.startswith("unconfirmed")
    assert smtp_sink.messages == []


def test_an_email_refused_after_data_then_interrupted_before_data_on_its_retry_is_retried(
    project, sender_account, smtp_sink
):
    from postdesk.outbound.services import queue_email

    email = queue_email(
        project=project,
        account=sender_account,
        kind=Kind.AGENT_REPLY,
        to=["customer@example.com"],
        subject="Your order",
        text="Hello",
    )
    smtp_sink.state.data_replies.append("451 4.7.1 content scan busy, try again later")
    outbound_sender.deliver([email.pk])  # the relay refused it after the content: certainly not accepted
    later(10)
    assert outbound_sender.claim(outbound_sender.due_ids())  # the retry claims it, then the process dies
    later(20)
    assert outbound_sender.recover_interrupted() == {"retried": 1, "unconfirmed": 0}


def test_two_senders_recovering_at_once_count_each_recipient_once(project, mass, smtp_sink, monkeypatch):
    campaign = start(project, mass, 10)
    prepared = campaign_sender.Prepared(campaign)
    endpoint = campaign_sender.relay_endpoint(mass)
    claimed = campaign_sender.claim(campaign, prepared, 10)
    campaign_sender.send_chunk(campaign, prepared, claimed[:6], endpoint)  # transmitted 6, then died
    later(30)
    real = campaign_sender.transaction

    class Interleaved:  # the other sender recovers between this one's reading and its writing
        done = False

        @classmethod
        def atomic(cls, *args, **kwargs):
            if not cls.done:
                cls.done = True
                campaign_sender.recover_interrupted(Campaign.objects.get(pk=campaign.pk))
            return real.atomic(*args, **kwargs)

    monkeypatch.setattr(campaign_sender, "transaction", Interleaved)
    campaign_sender.recover_interrupted(Campaign.objects.get(pk=campaign.pk))
    monkeypatch.setattr(campaign_sender, "transaction", real)
    campaign_sender.run(campaign.pk)
    campaign.refresh_from_db()
    assert (
        len(smtp_sink.messages) == 10 and campaign.sent == 10
    )  # found by bench/crash.py: sent was 3753 of 3000
