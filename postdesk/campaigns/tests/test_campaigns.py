"""Mass email: DNS records and verification, DKIM-signed personalised campaigns, tracking, unsubscribe, statistics."""

import datetime as dt
import re

import dkim
import pytest
from django.test import Client

from postdesk.campaigns import sender, services
from postdesk.campaigns.models import Campaign, CampaignRecipient, Suppression
from postdesk.campaigns.tests.conftest import publish
from postdesk.core import clock
from postdesk.core.errors import Conflict
from postdesk.emails.models import DeliveryEvent, Email, Kind
from postdesk.mailboxes import dns

pytestmark = pytest.mark.django_db


def test_a_mass_account_shows_two_txt_records_and_one_cname(mass_account, api, sam):
    records = api(sam).get("/api/v1/accounts/news/dns").json()
    assert [r["record_type"] for r in records] == ["TXT", "TXT", "CNAME"]
    assert records[0]["name"] == "acme.test" and records[0]["value"].startswith("v=spf1 ")
    assert records[1]["name"] == f"{mass_account.dkim_selector}._domainkey.acme.test"
    assert records[1]["value"].startswith("v=DKIM1; k=rsa; p=")
    assert records[2]["name"] == "pdmail.acme.test"
    assert not any(r["verified"] for r in records)


def test_verification_accepts_right_records_and_names_wrong_and_missing_ones(mass_account, dns_server, api, sam):
    results = {r["record_type"] + r["name"]: r for r in dns.verify(mass_account)}
    assert not any(r["verified"] for r in results.values())
    assert all(r["found"] == "no such name" for r in results.values())
    records = dns.records(mass_account)
    dns_server.add(records[0]["name"], "TXT", "v=spf1 include:_spf.someone-else.test ~all")  # wrong
    dns_server.add(records[1]["name"], "TXT", records[1]["value"])  # right
    mass_account.refresh_from_db()
    results = {r["record_type"] + r["name"]: r for r in dns.verify(mass_account)}
    assert [r["verified"] for r in results.values()] == [False, True, False]
    mass_account.refresh_from_db()
    assert mass_account.verified_at is None
    dns_server.clear()
    publish(dns_server, mass_account)
    response = api(sam).post("/api/v1/accounts/news/dns/verify")
    assert [r["verified"] for r in response.json()] == [True, True, True]
    mass_account.refresh_from_db()
    assert mass_account.verified_at is not None


def test_an_unvalidated_account_cannot_send_mass_email(mass_account, newsletter, project):
    with pytest.raises(Conflict, match="not verified"):
        services.create_campaign(project=project, account=mass_account, template=newsletter,
                                 recipients=[{"email": "a@example.com"}])


def run_campaign(project, account, template, recipients, **kw):
    campaign = services.create_campaign(project=project, account=account, template=template, recipients=recipients,
                                        **kw)
    sender.run(campaign.pk)
    campaign.refresh_from_db()
    return campaign


def test_a_campaign_sends_personalised_dkim_signed_messages_that_verify(verified, newsletter, project, smtp_sink,
                                                                          sam):
    recipients = [{"email": f"reader{i}@example.com", "fields": {"name": f"Réka {i}"}} for i in range(25)]
    campaign = run_campaign(project, verified, newsletter, recipients)
    assert (campaign.status, campaign.sent, campaign.total) == ("done", 25, 25)
    assert len(smtp_sink.messages) == 25
    public = dns.dkim_record(verified).encode()
    for message in smtp_sink.messages:
        data = message.data
        assert dkim.verify(data, dnsfunc=lambda name, timeout=5: public)
        assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in data
        assert message.mail_from.startswith("support+pdb-")  # VERP on the project's forwarding address
    import email as email_lib
    import email.policy

    sample = next(m for m in smtp_sink.messages if m.rcpt_tos == ["reader3@example.com"])
    parsed = email_lib.message_from_bytes(sample.data, policy=email.policy.default)
    assert str(parsed["Subject"]) == "Árvíztűrő news for Réka 3"
    assert "Hello Réka 3," in parsed.get_body(("plain",)).get_content()
    assert Email.objects.filter(kind=Kind.MASS, status="sent").count() == 25


def _tokens(data: bytes) -> dict:
    text = data.decode("ascii", "replace").replace("=\r\n", "")
    return {
        "click": re.findall(r"/t/c/([A-Za-z0-9_=-]+)", text),
        "open": re.findall(r"/t/o/([A-Za-z0-9_=-]+)", text),
        "unsubscribe": re.findall(r"/t/u/([A-Za-z0-9_=-]+)", text),
    }


def test_click_links_redirect_only_to_stored_targets_and_tampering_is_refused(verified, newsletter, project,
                                                                               smtp_sink):
    run_campaign(project, verified, newsletter, [{"email": "a@example.com", "fields": {"name": "A"}}])
    tokens = _tokens(smtp_sink.messages[0].data)
    client = Client()
    first = client.get(f"/t/c/{tokens['click'][0]}")
    assert first.status_code == 302 and first["Location"] == "https://shop.acme.test/autumn?x=1&y=2"
    token = tokens["click"][0]
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    assert client.get(f"/t/c/{tampered}").status_code == 404
    assert client.get("/t/c/https%3A%2F%2Fevil.test").status_code == 404
    assert client.get(f"/t/c/{tokens['open'][0]}").status_code == 404  # an open token is not a click token
    assert DeliveryEvent.objects.filter(kind="clicked").count() == 1


def test_unsubscribe_by_get_changes_nothing_and_the_one_click_post_does(verified, newsletter, project, smtp_sink):
    run_campaign(project, verified, newsletter, [{"email": "a@example.com", "fields": {"name": "A"}}])
    token = _tokens(smtp_sink.messages[0].data)["unsubscribe"][0]
    client = Client(enforce_csrf_checks=True)
    assert client.get(f"/t/u/{token}").status_code == 200
    assert not Suppression.objects.exists()
    response = client.post(f"/t/u/{token}", {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and Suppression.objects.count() == 1
    again = run_campaign(project, verified, newsletter, [{"email": "A@example.com"}, {"email": "b@example.com"}])
    assert (again.skipped, again.sent) == (1, 1)
    assert len(smtp_sink.messages) == 2


def test_pause_and_resume(verified, newsletter, project, smtp_sink):
    campaign = services.create_campaign(project=project, account=verified, template=newsletter,
                                        recipients=[{"email": f"r{i}@example.com"} for i in range(30)])
    services.pause(campaign)
    sender.run(campaign.pk)
    assert smtp_sink.messages == []
    services.resume(campaign)
    sender.run(campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == "done" and len(smtp_sink.messages) == 30


def test_a_crash_mid_campaign_resumes_without_sending_anyone_a_second_copy(verified, newsletter, project, smtp_sink):
    from postdesk.outbound import journal

    campaign = services.create_campaign(project=project, account=verified, template=newsletter,
                                        recipients=[{"email": f"r{i}@example.com"} for i in range(40)])
    prepared = sender.Prepared(campaign)
    Campaign.objects.filter(pk=campaign.pk).update(status="sending")
    # a sender claimed 10 recipients, transmitted 4 of them, then died
    claimed = sender.claim(campaign, prepared, 10)
    endpoint = sender.relay_endpoint(verified)
    sender.send_chunk(campaign, prepared, claimed[:4], endpoint)
    assert len(smtp_sink.messages) == 4
    assert CampaignRecipient.objects.filter(state="sending").count() == 10
    assert {e.pk for _, e in claimed[:4]} <= journal.started_ids()
    clock.set_now(clock.now() + dt.timedelta(minutes=5))  # the restart, a while later
    sender.run(campaign.pk)
    campaign.refresh_from_db()
    addresses = [m.rcpt_tos[0] for m in smtp_sink.messages]
    assert len(addresses) == 40 and len(set(addresses)) == 40
    assert campaign.status == "done" and campaign.sent == 40


def test_a_disposition_with_a_template_sends_a_disposition_email(project, sender_account, alice, smtp_sink):
    from postdesk.outbound import sender as outbound_sender
    from postdesk.projects.models import Disposition
    from postdesk.projects.services import upsert_template
    from postdesk.records.services import create_record

    upsert_template(project, "callback", {"subject": "We called you, {{ name }}", "body": "Call us back."})
    disposition = Disposition.objects.create(project=project, name="Call back",
                                             template=project.templates.get(name="callback"))
    record = create_record(project, name="Carla", email="carla@example.com")
    email = services.set_disposition(record, disposition, by=alice)
    assert email.kind == Kind.DISPOSITION and email.subject == "We called you, Carla"
    outbound_sender.deliver([email.pk])
    assert smtp_sink.messages[0].rcpt_tos == ["carla@example.com"]


ARF = """From: complaints@feedback.example.net\r
To: {rcpt}\r
Subject: FW: abuse report\r
Message-ID: <arf-{n}@feedback.example.net>\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=feedback-report; boundary="b"\r
\r
--b\r
Content-Type: text/plain\r
\r
This is an email abuse report.\r
--b\r
Content-Type: message/feedback-report\r
\r
Feedback-Type: abuse\r
User-Agent: Example-FBL/1.0\r
Version: 1\r
Original-Rcpt-To: {victim}\r
--b\r
Content-Type: text/rfc822-headers\r
\r
Message-ID: {mid}\r
X-Postdesk-Id: {email_id}\r
From: news@acme.test\r
To: {victim}\r
Subject: news\r
--b--\r
"""

DSN = """From: MAILER-DAEMON@mx.example.com\r
To: {rcpt}\r
Subject: Undelivered Mail Returned to Sender\r
Message-ID: <dsn-{n}@mx.example.com>\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r
\r
--b\r
Content-Type: text/plain\r
\r
Your message could not be delivered.\r
--b\r
Content-Type: message/delivery-status\r
\r
Reporting-MTA: dns; mx.example.com\r
\r
Final-Recipient: rfc822; {victim}\r
Action: failed\r
Status: 5.1.1\r
--b--\r
"""


def test_a_scripted_scenario_gives_exactly_the_expected_counters(verified, newsletter, project, smtp_sink, forwarding,
                                                                 sam, api, alice, sender_account):
    """Sends, a DSN bounce, an ARF complaint, opens, a click, an unsubscribe -> the statistics API."""
    from postdesk.outbound import sender as outbound_sender
    from postdesk.outbound.services import queue_email
    from postdesk.testing.factories import receive

    clock.set_now(dt.datetime(2026, 11, 10, 12, 0, tzinfo=dt.UTC))
    services.create_campaign(project=project, account=verified, template=newsletter, by=sam,
                             recipients=[{"email": f"r{i}@example.com", "fields": {"name": str(i)}} for i in range(5)])
    sender.run(Campaign.objects.get().pk)
    reply = queue_email(project=project, account=sender_account, kind=Kind.AGENT_REPLY, to=["carla@example.com"],
                        subject="Re: order", text="Shipped.", sent_by=alice)
    outbound_sender.deliver([reply.pk])
    by_rcpt = {m.rcpt_tos[0]: m for m in smtp_sink.messages}
    emails = {e.to[0]: e for e in Email.objects.filter(kind=Kind.MASS)}
    client = Client()
    # r0 opens twice and clicks; r1 opens; r2 bounces; r3 complains; r4 unsubscribes (one-click)
    t0 = _tokens(by_rcpt["r0@example.com"].data)
    client.get(f"/t/o/{t0['open'][0]}")
    client.get(f"/t/o/{t0['open'][0]}")
    client.get(f"/t/c/{t0['click'][1]}")
    client.get(f"/t/o/{_tokens(by_rcpt['r1@example.com'].data)['open'][0]}")
    receive(forwarding, DSN.format(rcpt=by_rcpt["r2@example.com"].mail_from, n=1, victim="r2@example.com").encode(),
            mail_from="", rcpt=by_rcpt["r2@example.com"].mail_from)
    r3 = emails["r3@example.com"]
    receive(forwarding, ARF.format(rcpt="support@acme.test", n=1, victim="r3@example.com", mid=r3.message_id,
                                   email_id=r3.pk).encode(), mail_from="complaints@feedback.example.net")
    client.post(f"/t/u/{_tokens(by_rcpt['r4@example.com'].data)['unsubscribe'][0]}", {"List-Unsubscribe": "One-Click"})
    body = api(sam).get("/api/v1/stats/agents", project="101", date_from="2026-11-01", date_to="2026-11-30").json()
    by_agent = {a["agent"]: a for a in body["agents"]}
    assert by_agent["sam"]["mass"] == {"sent": 5, "delivered": 5, "dropped": 0, "bounced": 1, "opened": 2,
                                       "link_clicks": 1, "marked_as_spam": 1, "unsubscribed": 1}
    assert by_agent["alice"]["agent_email"] == {"sent": 1, "response": 0, "delivered": 1, "dropped": 0, "bounced": 0,
                                                "opened": 0, "link_clicks": 0, "marked_as_spam": 0, "unsubscribed": 0}
    assert Suppression.objects.filter(reason__in=["bounced", "complained", "unsubscribed"]).count() == 3
