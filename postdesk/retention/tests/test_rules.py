"""What automatic deletion removes, and when: the clock moved to day N-1 and day N after receipt or closure."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from postdesk.campaigns.models import Suppression
from postdesk.emails.models import (
    Attachment,
    DeliveryEvent,
    Email,
    EmailContent,
    EventKind,
    Kind,
    MessageIdIndex,
    RawMessage,
    Status,
    Thread,
)
from postdesk.emails.services import add_event, address_hash
from postdesk.inbound.models import IncomingMessage
from postdesk.outbound import sender
from postdesk.records.models import Record, RecordField
from postdesk.reports.models import DailyEmailStats
from postdesk.retention.tests.conftest import T0, at, day, found, receive_at, run_retention, with_attachment
from postdesk.tickets import services as tickets
from postdesk.tickets.models import Ticket

pytestmark = pytest.mark.django_db


def ids(model, **filters) -> set[int]:
    return set(model.objects.filter(**filters).values_list("id", flat=True))


def stats() -> list[tuple]:
    return sorted(DailyEmailStats.objects.values_list())


@pytest.fixture
def history(forwarding, alice, sender_account, retention_days):
    """One project's mail: a loose email (no ticket), a ticket handled and closed on day 2 (with a customer record,
    an agent's reply, delivery and open events), and an open ticket holding mail as old as the rest."""
    RecordField.objects.create(project=forwarding.project, name="customer_no", personal_data=True)
    RecordField.objects.create(project=forwarding.project, name="segment", personal_data=False)
    from postdesk.records.services import create_record

    carla = at(
        T0,
        create_record,
        forwarding.project,
        name="Carla Customer",
        email="carla@example.com",
        phone="+36 1 555 0101",
        data={"customer_no": "C-1001", "segment": "retail"},
    )
    olga = at(T0, create_record, forwarding.project, name="Olga Open", email="olga@example.com")
    loose = receive_at(
        forwarding,
        T0,
        raw=with_attachment(
            subject="Loose question",
            body="A loose walrus question.",
            sender="lena@example.com",
            filename="walrus.txt",
            content=b"walrus attachment bytes",
        ),
    )
    kettle = receive_at(
        forwarding,
        T0,
        subject="Broken kettle",
        body="My kettle whistles backwards.",
        sender="carla@example.com",
    )
    closed = at(T0, tickets.assign_email, kettle, title="Broken kettle", by=alice)
    reply = at(day(1), tickets.reply, closed, body="We replace the kettle.", by=alice)
    at(day(1), sender.deliver, [reply.pk])
    at(day(1.5), add_event, reply, EventKind.OPENED, {"ua": "Mail"})
    at(day(2), tickets.close_ticket, closed, by=alice)
    parcel = receive_at(
        forwarding,
        T0,
        subject="Lost parcel",
        body="The parcel fell into a volcano.",
        sender="olga@example.com",
    )
    still_open = at(T0, tickets.assign_email, parcel, title="Lost parcel", by=alice)
    closed.refresh_from_db()
    reply.refresh_from_db()
    assert closed.record == carla and still_open.record == olga and reply.status == Status.SENT
    return {
        "loose": loose,
        "kettle": kettle,
        "reply": reply,
        "parcel": parcel,
        "closed": closed,
        "open": still_open,
        "carla": carla,
        "olga": olga,
    }


@pytest.mark.parametrize("n", [30, 45])
def test_an_email_without_a_ticket_stays_at_day_n_minus_1_and_goes_at_day_n(history, retention_days, n):
    retention_days(n)
    everything = ids(Email)
    assert run_retention(day(n - 1)).totals()["emails"] == 0
    assert ids(Email) == everything and found("walrus") == {history["loose"].pk}
    result = run_retention(day(n))
    assert result.totals()["emails"] == 1
    assert ids(Email) == everything - {history["loose"].pk}
    assert found("walrus") == set()


@pytest.mark.parametrize("n", [30, 45])
def test_mail_of_a_closed_ticket_stays_until_n_days_after_the_closure(history, retention_days, n):
    retention_days(n)
    closed, kettle, reply = history["closed"], history["kettle"], history["reply"]
    run_retention(day(n + 1))  # n days after receipt, but the ticket closed on day 2
    assert ids(Email, ticket=closed) == {kettle.pk, reply.pk} and Ticket.objects.filter(pk=closed.pk).exists()
    result = run_retention(day(2 + n))
    assert result.totals()["emails"] == 2 and result.totals()["tickets"] == 1
    assert not Ticket.objects.filter(pk=closed.pk).exists()
    assert not Email.objects.filter(pk__in=[kettle.pk, reply.pk]).exists()
    assert found("kettle") == set() and found("whistles") == set()


def test_an_open_ticket_keeps_all_its_mail_however_old(history):
    run_retention(day(3650))
    assert ids(Email) == {history["parcel"].pk}
    assert Ticket.objects.filter(pk=history["open"].pk).exists()
    assert found("volcano") == {history["parcel"].pk}
    history["olga"].refresh_from_db()
    assert history["olga"].anonymised_at is None and history["olga"].email == "olga@example.com"


def test_a_reopened_ticket_keeps_its_mail_and_counts_from_its_next_closure(forwarding, history, alice):
    closed = history["closed"]
    answer = receive_at(
        forwarding,
        day(20),
        subject=f"Re: Broken kettle [{closed.number}]",
        body="It whistles again.",
        sender="carla@example.com",
    )
    closed.refresh_from_db()
    assert answer.ticket_id == closed.pk and closed.status == "park"
    run_retention(day(40))
    assert ids(Email, ticket=closed) == {history["kettle"].pk, history["reply"].pk, answer.pk}
    at(day(25), tickets.close_ticket, closed, by=alice)
    run_retention(day(25 + 29))
    assert Ticket.objects.filter(pk=closed.pk).exists()
    run_retention(day(25 + 30))
    assert not Ticket.objects.filter(pk=closed.pk).exists() and not ids(Email, pk=answer.pk)


def test_a_reply_sent_after_the_closure_stays_until_it_is_n_days_old_and_keeps_the_ticket(history, alice):
    closed = history["closed"]
    late = at(day(10), tickets.reply, closed, body="One more thing about the kettle.", by=alice)
    at(day(10), sender.deliver, [late.pk])
    closed.refresh_from_db()
    assert closed.status == "closed"  # an outbound email does not reopen the ticket
    counters = Ticket.objects.filter(pk=closed.pk).values().get()
    run_retention(day(32))
    assert ids(Email, ticket=closed) == {late.pk}
    assert Ticket.objects.filter(pk=closed.pk).values().get() == counters  # the ticket list's counters stay
    run_retention(day(40))
    assert not Ticket.objects.filter(pk=closed.pk).exists()


def test_deleting_removes_content_attachments_raw_messages_events_threads_and_intake_rows(history):
    gone = [history["kettle"], history["reply"], history["loose"]]
    gone_ids = [e.pk for e in gone]
    assert Attachment.objects.filter(email_id__in=gone_ids).exists()
    raws = {e.raw_id for e in gone}
    threads = {e.thread_id for e in gone}
    assert DeliveryEvent.objects.filter(email_id__in=gone_ids).exists()
    assert IncomingMessage.objects.filter(email_id__in=gone_ids).exists()
    run_retention(day(40))
    assert not EmailContent.objects.filter(email_id__in=gone_ids).exists()
    assert not Attachment.objects.filter(email_id__in=gone_ids).exists()
    assert not DeliveryEvent.objects.filter(email_id__in=gone_ids).exists()
    assert not IncomingMessage.objects.filter(email_id__in=gone_ids).exists()
    assert not RawMessage.objects.filter(pk__in=raws).exists()
    assert not Thread.objects.filter(pk__in=threads).exists()
    assert not MessageIdIndex.objects.filter(thread_id__in=threads).exists()
    assert not MessageIdIndex.objects.filter(message_id__in=[e.message_id for e in gone]).exists()
    assert Email.objects.get(pk=history["parcel"].pk).raw_id is not None


def test_statistics_are_unchanged(history):
    before = stats()
    assert any(row for row in before if "agent" in row)  # the reply: sent, delivered, opened
    run_retention(day(40))
    assert ids(Email) == {history["parcel"].pk}
    assert stats() == before


def test_a_record_with_no_tickets_left_has_its_personal_attributes_anonymised(history, forwarding):
    carla = history["carla"]
    run_retention(day(40))
    carla.refresh_from_db()
    assert (carla.name, carla.email, carla.phone) == ("", "", "")
    assert carla.data == {"segment": "retail"} and carla.anonymised_at is not None
    assert Record.objects.filter(pk=carla.pk).exists()
    history["olga"].refresh_from_db()
    assert history["olga"].name == "Olga Open"


def test_a_record_that_still_has_a_ticket_is_not_anonymised(history, forwarding, alice):
    other = receive_at(forwarding, day(30), subject="Second kettle", sender="carla@example.com")
    second = at(day(30), tickets.assign_email, other, title="Second kettle", by=alice)
    assert second.record == history["carla"]
    run_retention(day(40))
    assert not Ticket.objects.filter(pk=history["closed"].pk).exists()
    history["carla"].refresh_from_db()
    assert history["carla"].email == "carla@example.com" and history["carla"].anonymised_at is None


def test_erased_addresses_stay_only_as_hashes_on_the_suppression_list(history):
    run_retention(day(40))
    hashes = set(Suppression.objects.filter(reason="erased").values_list("address_hash", flat=True))
    assert {address_hash("lena@example.com"), address_hash("carla@example.com")} <= hashes
    assert address_hash("olga@example.com") not in hashes
    assert address_hash("support@acme.test") not in hashes
    assert Suppression.objects.filter(reason="erased").exclude(project=history["loose"].project).count() == 0
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {Suppression._meta.db_table}")
        assert "carla@example.com" not in repr(cursor.fetchall())


def test_the_ticket_number_of_a_deleted_ticket_no_longer_joins_mail(history, forwarding):
    number = history["closed"].number
    run_retention(day(40))
    late = receive_at(
        forwarding, day(41), subject=f"Re: Broken kettle [{number}]", sender="carla@example.com"
    )
    assert late.ticket_id is None and late.status == Status.NEW


def test_a_reply_to_a_deleted_message_starts_a_new_thread(history, forwarding):
    old = history["loose"]
    run_retention(day(31))
    again = receive_at(
        forwarding,
        day(32),
        subject="Re: Loose question",
        in_reply_to=old.message_id,
        sender="lena@example.com",
    )
    assert again.thread_id is not None and again.thread_id != old.thread_id


def test_a_thread_that_keeps_emails_takes_the_subject_of_its_first_remaining_email(
    forwarding, retention_days
):
    first = receive_at(forwarding, T0, subject="Hedgehog in the garden", message_id="<h-1@example.com>")
    second = receive_at(
        forwarding,
        day(20),
        subject="Re: New topic entirely",
        message_id="<h-2@example.com>",
        in_reply_to="<h-1@example.com>",
    )
    assert first.thread_id == second.thread_id
    run_retention(day(31))
    thread = Thread.objects.get(pk=second.thread_id)
    assert thread.subject == "New topic entirely" and "Hedgehog" not in thread.subject


def test_delivery_reports_and_unparseable_mail_follow_the_date_rule(forwarding, project, sender_account):
    from postdesk.inbound.tests.test_processing import DSN
    from postdesk.outbound.services import queue_email

    out = at(
        T0,
        queue_email,
        project=project,
        account=sender_account,
        kind=Kind.AGENT_REPLY,
        to=["customer@example.com"],
        subject="Your order",
        text="It ships today.",
    )
    at(T0, sender.deliver, [out.pk])
    out.refresh_from_db()
    report = receive_at(forwarding, day(1), raw=DSN.format(rcpt=out.return_path, n=9, mid="<u@x>").encode())
    junk = receive_at(forwarding, day(1), raw=b"\x89PNG\r\n\x1a\n\x00\x00binary")
    assert report.kind == Kind.DELIVERY_REPORT
    from postdesk.projects.services import update_settings

    update_settings(project, {"auto_delete_days": 30})
    run_retention(day(30))
    assert ids(Email) == {
        report.pk,
        junk.pk,
    }  # the reply went on day 30; the report and junk arrived on day 1
    run_retention(day(31))
    assert ids(Email) == set() and not RawMessage.objects.exists()


def test_a_raw_message_shared_with_another_project_stays_until_its_last_email_goes(
    forwarding, other_project, retention_days
):
    from django.db import transaction

    from postdesk.inbound import processing
    from postdesk.inbound.intake import Delivery, store
    from postdesk.mailboxes.services import upsert_account
    from postdesk.testing.factories import raw_message

    sales, _ = upsert_account(
        {"name": "sales-in", "protocol": "forwarding", "address": "sales@beta.test"}, project=other_project
    )
    raw = raw_message(subject="Both of you", to="support@acme.test, sales@beta.test")
    with transaction.atomic():
        from postdesk.core import clock

        with clock.frozen(T0):
            stored = store(
                Delivery(raw=raw, mail_from="c@example.com", rcpt_to=["a", "b"], accounts=[forwarding, sales])
            )
    with clock.frozen(T0):
        processing.process(stored.ids)
    ours, theirs = (Email.objects.get(project=p) for p in (forwarding.project, other_project))
    assert ours.raw_id == theirs.raw_id
    run_retention(day(400))
    assert not Email.objects.filter(pk=ours.pk).exists()
    assert (
        Email.objects.filter(pk=theirs.pk).exists() and RawMessage.objects.filter(pk=theirs.raw_id).exists()
    )
    assert bytes(RawMessage.objects.get(pk=theirs.raw_id).data) == raw
    from postdesk.projects.services import update_settings

    update_settings(other_project, {"auto_delete_days": 60})
    run_retention(day(400))
    assert not Email.objects.exists() and not RawMessage.objects.exists()


def test_projects_without_the_setting_keep_everything(forwarding, project):
    email = receive_at(forwarding, T0)
    result = run_retention(day(3650))
    assert result.projects == {} and Email.objects.filter(pk=email.pk).exists()


def test_campaign_recipients_keep_their_state_but_not_who_they_were(project, forwarding, retention_days):
    from postdesk.campaigns.models import Campaign, CampaignRecipient
    from postdesk.mailboxes.services import upsert_account
    from postdesk.projects.services import upsert_template

    news, _ = upsert_account(
        {"name": "news", "protocol": "mass", "address": "news@acme.test", "domain": "acme.test"}
    )
    upsert_template(project, "news", {"subject": "News", "body": "Hello"})
    campaign = Campaign.objects.create(
        project=project,
        account=news,
        template=project.templates.get(name="news"),
        status="done",
        total=2,
        sent=1,
        skipped=1,
        created_at=T0,
    )
    mass = Email.objects.create(
        project=project,
        direction="out",
        kind=Kind.MASS,
        status=Status.SENT,
        date=T0,
        from_address="news@acme.test",
        to=["mia@example.com"],
        subject="News",
        campaign=campaign,
    )
    sent = CampaignRecipient.objects.create(
        campaign=campaign, address="mia@example.com", fields={"name": "Mia"}, state="sent", email=mass
    )
    skipped = CampaignRecipient.objects.create(
        campaign=campaign, address="sid@example.com", fields={"name": "Sid"}, state="skipped"
    )
    run_retention(day(30))
    sent.refresh_from_db()
    skipped.refresh_from_db()
    assert (sent.address, sent.fields, sent.state, sent.email_id) == ("", {}, "sent", None)
    assert (skipped.address, skipped.fields, skipped.state) == ("", {}, "skipped")
    campaign.refresh_from_db()
    assert (campaign.total, campaign.sent, campaign.skipped) == (2, 1, 1)
    hashes = set(Suppression.objects.values_list("address_hash", flat=True))
    assert {address_hash("mia@example.com"), address_hash("sid@example.com")} <= hashes


def test_audit_events_about_deleted_tickets_and_anonymised_records_lose_their_values(history):
    from postdesk.core.models import AuditEvent

    closed, carla = history["closed"], history["carla"]
    assert (
        AuditEvent.objects.get(action="ticket.create", object_id=str(closed.pk)).after["title"]
        == "Broken kettle"
    )
    run_retention(day(40))
    created = AuditEvent.objects.get(action="ticket.create", object_id=str(closed.pk))
    assert created.after is None and created.actor_name == "alice"
    record_event = AuditEvent.objects.get(action="record.create", object_id=str(carla.pk))
    assert record_event.after is None
    kept = AuditEvent.objects.get(action="ticket.create", object_id=str(history["open"].pk))
    assert kept.after["title"] == "Lost parcel"


def test_old_automatic_response_logs_and_webhook_deliveries_go(project, forwarding, retention_days):
    from postdesk.inbound.models import AutoResponseLog
    from postdesk.integrations.models import WebhookDelivery, WebhookEndpoint

    AutoResponseLog.objects.create(project=project, address="lena@example.com", at=T0)
    fresh_log = AutoResponseLog.objects.create(project=project, address="lena@example.com", at=day(25))
    endpoint = WebhookEndpoint.objects.create(
        project=project, url="https://crm.acme.test/hook", secret="s" * 32
    )
    WebhookDelivery.objects.create(
        endpoint=endpoint, event="email", payload='{"text": "x"}', state="delivered", created_at=T0
    )
    pending = WebhookDelivery.objects.create(endpoint=endpoint, event="email", payload="{}", created_at=T0)
    run_retention(day(30))
    assert list(AutoResponseLog.objects.values_list("id", flat=True)) == [fresh_log.pk]
    assert list(WebhookDelivery.objects.values_list("id", flat=True)) == [pending.pk]


def test_a_deleted_ticket_is_announced_to_the_ticket_webhooks(history, project):
    from postdesk.integrations.models import WebhookDelivery, WebhookEndpoint

    endpoint = WebhookEndpoint.objects.create(project=project, url="https://hooks.example.com/t", events=["ticket"])
    closed = history["closed"]
    run_retention(day(40))
    deletes = [json.loads(d.payload) for d in WebhookDelivery.objects.filter(endpoint=endpoint, event="ticket.delete")]
    assert [d["ticket"]["ticketId"] for d in deletes] == [closed.pk]
    assert deletes[0]["ticket"]["ticketNo"] == closed.number
