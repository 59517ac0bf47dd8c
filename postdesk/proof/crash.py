"""Crash tests against a real installation (RFC 5321 section 6.1: once 250 is sent, the message must not be lost,
not even when the host crashes). Shared by postdesk/proof/tests/test_crash.py (short, in CI) and bench/crash.py
(longer, prints the figures for docs/benchmarks.md).

- ``inbound``: 10 parallel SMTP sessions send uniquely identified messages to `postdesk smtpd` while `postdesk
  worker` processes them; the listener is killed with SIGKILL three times at random moments and restarted at once.
  Clients behave like a sending MTA: a message whose transaction failed (connection reset, refused, 451) is sent
  again after reconnecting, so a message stored just before the crash whose 250 never arrived is retried and must be
  recognised as a duplicate. At the end the worker is killed and restarted (its start-up recovery picks up whatever
  is pending), and every message that got a 250 must exist exactly once as an Email, and nothing may be pending or
  failed.
- ``outbound``: N emails queued for an SMTP relay; the worker is killed with SIGKILL three times while it sends.
  After each kill the claim times of the emails left in 'sending' are moved back past the stuck threshold (instead
  of waiting two minutes) and the worker is restarted. Every email must reach the relay exactly once, except those
  the journal shows were in transmission at the kill: those are marked sent (unconfirmed) and never sent twice.
- ``campaign``: the same for a mass-email campaign: no recipient gets two copies.
"""

from __future__ import annotations

import json
import random
import smtplib
import threading
import time
from dataclasses import dataclass, field

from postdesk.proof.harness import Installation, RecordingRelay, free_port

INBOUND_CONFIG = """
users: [{username: sam, password: "proof-supervisor-pw", role: supervisor}]
accounts:
  - {name: support-in, protocol: forwarding, address: support@acme.test, project: "101"}
projects:
  - {key: "101", name: Proof}
"""


def message(run: str, session: int, number: int) -> tuple[str, bytes]:
    message_id = f"<crash-{run}-{session}-{number}@example.com>"
    body = f"Hello, this is message {number} of session {session}. My order has not arrived yet.\r\n" * 8
    raw = (
        f"From: Customer {session} <customer{session}@example.com>\r\nTo: support@acme.test\r\n"
        f"Subject: Crash test {session}/{number}\r\nMessage-ID: {message_id}\r\n"
        "Date: Thu, 26 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body
    ).encode()
    return message_id, raw


@dataclass
class Load:
    port: int
    sessions: int = 10
    run: str = field(default_factory=lambda: str(int(time.time() * 1000)))
    acked: list[str] = field(default_factory=list)  # message ids that got a 250
    unacked: list[str] = field(default_factory=list)  # still failing when the load stopped: unknown outcome
    failures: int = 0  # failed transactions (connection refused/reset, 4xx), each retried
    retried_then_acked: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def session(self, number: int) -> None:
        client = None
        count = 0
        pending = None
        failed_before = False
        while not self.stop.is_set():
            if pending is None:
                count += 1
                pending = message(self.run, number, count)
                failed_before = False
            try:
                if client is None:
                    client = smtplib.SMTP("127.0.0.1", self.port, timeout=15)
                client.sendmail("customer@example.com", ["support@acme.test"], pending[1])
            except (OSError, smtplib.SMTPException):
                with self.lock:
                    self.failures += 1
                failed_before = True
                if client is not None:
                    try:
                        client.close()
                    except OSError:
                        pass
                client = None
                time.sleep(0.05)
                continue
            with self.lock:
                self.acked.append(pending[0])
                self.retried_then_acked += failed_before
            pending = None
        if pending is not None:
            self.unacked.append(pending[0])
        if client is not None:
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                pass


COUNT_INBOUND = """
from collections import Counter
from postdesk.emails.models import Email
from postdesk.inbound.models import IncomingMessage
acked = json.load(open(os.environ['POSTDESK_DATA_DIR'] + '/acked.json'))
ids = Counter(Email.objects.filter(direction='in').values_list('message_id', flat=True))
states = Counter(IncomingMessage.objects.values_list('state', flat=True))
result = {
    'emails': sum(ids.values()),
    'lost': [m for m in acked['acked'] if ids[m] == 0],
    'duplicated': [m for m, n in ids.items() if n > 1],
    'unacked_stored': sum(1 for m in acked['unacked'] if ids[m]),
    'states': dict(states),
}
"""


def _wait(condition, timeout: float, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def inbound(
    *,
    seconds: float = 30.0,
    sessions: int = 10,
    kills: int = 3,
    database_url: str | None = None,
    seed: int | None = None,
    drain_timeout: float = 240.0,
) -> dict:
    rng = random.Random(seed)
    with Installation(database_url) as inst:
        inst.setup(INBOUND_CONFIG)
        port = free_port()
        smtp = ("smtpd", "--smtp", f"127.0.0.1:{port}", "--lmtp", "off")
        inst.start("smtpd", *smtp)
        inst.start("worker", "worker")
        inst.wait_listening("smtpd", port)
        load = Load(port=port, sessions=sessions)
        threads = [threading.Thread(target=load.session, args=(i,), daemon=True) for i in range(sessions)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        # kill moments: random, spread over the load window, at least two seconds apart
        moments = sorted(rng.uniform(0.1, 0.9) * seconds for _ in range(kills))
        for i in range(1, len(moments)):
            moments[i] = max(moments[i], moments[i - 1] + 2.0)
        downtime = []
        acked_at_kill = []
        for moment in moments:
            time.sleep(max(0.0, started + moment - time.monotonic()))
            acked_at_kill.append(len(load.acked))
            killed = time.monotonic()
            inst.kill("smtpd")
            inst.start("smtpd", *smtp)
            inst.wait_listening("smtpd", port)
            downtime.append(time.monotonic() - killed)
        time.sleep(max(0.0, started + seconds - time.monotonic()))
        load.stop.set()
        for thread in threads:
            thread.join(60)
        load_seconds = time.monotonic() - started
        # the worker dies too; its successor's start-up recovery processes whatever is pending (spool rows the
        # killed worker had claimed are taken back at once: their processing slots' locks died with it)
        inst.kill("worker")
        (inst.dir / "acked.json").write_text(json.dumps({"acked": load.acked, "unacked": load.unacked}))
        drain_started = time.monotonic()
        inst.start("worker", "worker")

        def drained():
            counts = inst.python(COUNT_INBOUND)
            pending = counts["states"].get("pending", 0)
            return counts if not pending and not counts["lost"] else None

        counts = _wait(drained, drain_timeout, 2.0) or inst.python(COUNT_INBOUND)
        drain_seconds = time.monotonic() - drain_started
        inst.terminate("worker")
        inst.terminate("smtpd")
        return {
            "scenario": "inbound: kill -9 of the SMTP listener under load",
            "database": "postgresql" if database_url else "sqlite",
            "sessions": sessions,
            "load_seconds": round(load_seconds, 1),
            "kills": len(moments),
            "kill_moments_s": [round(m, 1) for m in moments],
            "acked_before_each_kill": acked_at_kill,
            "listener_down_s": [round(d, 2) for d in downtime],
            "acknowledged": len(load.acked),
            "acknowledged_per_s": round(len(load.acked) / load_seconds, 1),
            "failed_transactions_retried": load.failures,
            "acknowledged_after_a_retry": load.retried_then_acked,
            "unacknowledged_at_stop": len(load.unacked),
            "unacknowledged_but_stored": counts["unacked_stored"],
            "emails_stored": counts["emails"],
            "lost": len(counts["lost"]),
            "lost_ids": counts["lost"][:20],
            "duplicated": len(counts["duplicated"]),
            "duplicated_ids": counts["duplicated"][:20],
            "incoming_states": counts["states"],
            "drain_after_restart_s": round(drain_seconds, 1),
        }


OUTBOUND_CONFIG = """
users: [{{username: sam, password: "proof-supervisor-pw", role: supervisor}}]
accounts:
  - {{name: support-in, protocol: forwarding, address: support@acme.test, project: "101"}}
  - {{name: support-out, protocol: smtp, host: 127.0.0.1, port: {port}, security: none, auth: none,
     address: support@acme.test, display_name: Acme Support, default: true}}
projects:
  - {{key: "101", name: Proof, sender_accounts: [support-out]}}
"""

QUEUE_REPLIES = """
from django.db import transaction
from postdesk.mailboxes.models import EmailAccount
from postdesk.outbound.services import queue_email
from postdesk.projects.models import Project
project = Project.objects.get(key='101')
account = EmailAccount.objects.get(name='support-out')
ids = []
with transaction.atomic():
    for i in range(int(os.environ['PROOF_COUNT'])):
        ids.append(queue_email(project=project, account=account, kind='agent_reply', to=[f'r{i}@example.com'],
                               subject=f'Reply {i}', text='Hello,\\nyour parcel left today.\\n').pk)
result = ids
"""

# What a crashed sender leaves behind is resolved once its claim is older than the stuck threshold (two minutes);
# the harness moves the claim times back instead of waiting.
TIME_PASSES = """
import datetime as dt
from postdesk.core import clock
from postdesk.emails.models import Email
result = Email.objects.filter(direction='out', status='sending').update(
    next_attempt_at=clock.now() - dt.timedelta(minutes=10))
"""

COUNT_OUTBOUND = """
from collections import Counter
from postdesk.emails.models import Email
rows = list(Email.objects.filter(direction='out').values_list('id', 'status', 'smtp_response'))
result = {
    'statuses': dict(Counter(s for _, s, _ in rows)),
    'unconfirmed': [i for i, s, r in rows if r.startswith('unconfirmed')],
}
"""


def _kill_when(
    inst: Installation, relay: RecordingRelay, thresholds: list[int], timeout: float
) -> list[dict]:
    """Kill the worker each time the relay has accepted `threshold` messages; restart it after 'time passes'."""
    kills = []
    for threshold in thresholds:
        deadline = time.monotonic() + timeout
        while relay.count() < threshold and time.monotonic() < deadline:
            time.sleep(0.005)
        seen = relay.count()
        inst.kill("worker")
        moved = inst.python(TIME_PASSES)
        kills.append({"relay_had": seen, "left_sending": moved})
        inst.start("worker", "worker")
    return kills


def outbound(
    *,
    emails: int = 300,
    kills: int = 3,
    delay: float = 0.03,
    database_url: str | None = None,
    timeout: float = 240.0,
) -> dict:
    with RecordingRelay(delay=delay) as relay, Installation(database_url) as inst:
        inst.env["PROOF_COUNT"] = str(emails)
        inst.setup(OUTBOUND_CONFIG.format(port=relay.port))
        ids = inst.python(QUEUE_REPLIES)
        started = time.monotonic()
        inst.start("worker", "worker")
        thresholds = [emails * (i + 1) // (kills + 1) for i in range(kills)]
        kill_log = _kill_when(inst, relay, thresholds, timeout)

        def settled():
            counts = inst.python(COUNT_OUTBOUND)
            busy = counts["statuses"].get("queued", 0) + counts["statuses"].get("sending", 0)
            return counts if not busy else None

        counts = _wait(settled, timeout, 1.0) or inst.python(COUNT_OUTBOUND)
        seconds = time.monotonic() - started
        inst.terminate("worker")
        received = relay.by_id()
        unconfirmed = set(counts["unconfirmed"])
        missing = [i for i in ids if not received[i]]
        return {
            "scenario": "outbound: kill -9 of the worker while it sends",
            "database": "postgresql" if database_url else "sqlite",
            "emails": len(ids),
            "kills": kill_log,
            "seconds": round(seconds, 1),
            "received_by_relay": sum(received[i] for i in ids),
            "received_exactly_once": sum(1 for i in ids if received[i] == 1),
            "duplicated": sum(1 for i in ids if received[i] > 1),
            "unconfirmed": len(unconfirmed),
            "unconfirmed_but_received": sum(1 for i in unconfirmed if received[i]),
            "missing_unconfirmed": sum(1 for i in missing if i in unconfirmed),
            "missing_otherwise": sum(1 for i in missing if i not in unconfirmed),
            "statuses": counts["statuses"],
        }


CAMPAIGN_CONFIG = """
users: [{username: sam, password: "proof-supervisor-pw", role: supervisor}]
accounts:
  - {name: support-in, protocol: forwarding, address: support@acme.test, project: "101"}
  - {name: news, protocol: mass, address: news@acme.test, domain: acme.test, display_name: Acme News}
projects:
  - key: "101"
    name: Proof
    templates:
      - {name: news, subject: "News for {{ name }}", body: "Hello {{ name }}, our offers.", visible_to_agents: false}
"""

START_CAMPAIGN = """
from django.db import transaction
from postdesk.campaigns.services import create_campaign
from postdesk.core import clock
from postdesk.mailboxes.models import EmailAccount
from postdesk.projects.models import Project
EmailAccount.objects.filter(name='news').update(host='127.0.0.1', port=int(os.environ['PROOF_RELAY_PORT']),
                                                security='none', auth='none', verified_at=clock.now())
project = Project.objects.get(key='101')
account = EmailAccount.objects.get(name='news')
with transaction.atomic():
    campaign = create_campaign(project=project, account=account, template=project.templates.get(name='news'),
                               recipients=[{'email': f'r{i}@example.com', 'fields': {'name': f'R{i}'}}
                                           for i in range(int(os.environ['PROOF_COUNT']))])
result = campaign.pk
"""

COUNT_CAMPAIGN = """
from collections import Counter
from postdesk.campaigns.models import Campaign, CampaignRecipient
from postdesk.emails.models import Email
campaign = Campaign.objects.get()
states = Counter(CampaignRecipient.objects.values_list('state', flat=True))
unconfirmed = list(Email.objects.filter(campaign=campaign, smtp_response__startswith='unconfirmed')
                   .values_list('to', flat=True))
result = {'status': campaign.status, 'sent': campaign.sent, 'failed': campaign.failed, 'states': dict(states),
          'unconfirmed': [t[0] for t in unconfirmed]}
"""


def campaign(
    *,
    recipients: int = 1500,
    kills: int = 3,
    delay: float = 0.005,
    database_url: str | None = None,
    timeout: float = 300.0,
) -> dict:
    with RecordingRelay(delay=delay) as relay, Installation(database_url) as inst:
        inst.env.update(PROOF_COUNT=str(recipients), PROOF_RELAY_PORT=str(relay.port))
        inst.setup(CAMPAIGN_CONFIG)
        inst.python(START_CAMPAIGN)
        started = time.monotonic()
        inst.start("worker", "worker")
        thresholds = [recipients * (i + 1) // (kills + 1) for i in range(kills)]
        kill_log = _kill_when(inst, relay, thresholds, timeout)

        def done():
            counts = inst.python(COUNT_CAMPAIGN)
            return counts if counts["status"] == "done" else None

        counts = _wait(done, timeout, 1.0) or inst.python(COUNT_CAMPAIGN)
        seconds = time.monotonic() - started
        inst.terminate("worker")
        received = relay.by_recipient()
        addresses = [f"r{i}@example.com" for i in range(recipients)]
        unconfirmed = set(counts["unconfirmed"])
        missing = [a for a in addresses if not received[a]]
        return {
            "scenario": "campaign: kill -9 of the worker mid-campaign",
            "database": "postgresql" if database_url else "sqlite",
            "recipients": recipients,
            "kills": kill_log,
            "seconds": round(seconds, 1),
            "status": counts["status"],
            "campaign_sent_counter": counts["sent"],
            "received_by_relay": sum(received.values()),
            "received_exactly_once": sum(1 for a in addresses if received[a] == 1),
            "duplicated": sum(1 for a in addresses if received[a] > 1),
            "unconfirmed": len(unconfirmed),
            "unconfirmed_but_received": sum(1 for a in unconfirmed if received[a]),
            "missing_unconfirmed": sum(1 for a in missing if a in unconfirmed),
            "missing_otherwise": sum(1 for a in missing if a not in unconfirmed),
            "recipient_states": counts["states"],
        }
