"""Outbound benchmark (issue: one reply p95 < 20 ms from the API call to acceptance by a local relay; 1,000 queued
replies drain at >= 1,000 msg/s).

A fresh installation with `postdesk web` and `postdesk worker` running, and a local relay (aiosmtpd, its own
process) that records when each message arrives. Latency: POST /api/v1/tickets/{n}/reply over HTTP, then the time
until the relay has the message. Drain: 1,000 replies queued in one transaction, then the time until the relay has
them all.

    .venv/bin/python bench/outbound.py [--replies 200] [--drain 1000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Installation, free_port, save, summary, wait_port  # noqa: E402

RELAY = """
import sys, time, re
from aiosmtpd.controller import Controller
pattern = re.compile(rb"X-Postdesk-Id: (\\d+)")
class H:
    async def handle_DATA(self, server, session, envelope):
        found = pattern.search(envelope.original_content or b"")
        sys.stdout.write(f"{found.group(1).decode() if found else '?'} {time.time():.6f}\\n")
        sys.stdout.flush()
        return "250 OK"
c = Controller(H(), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
sys.stdout.write("ready\\n"); sys.stdout.flush()
sys.stdin.read()
c.stop()
"""


class Relay:
    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, "-c", RELAY, str(self.port)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)
        assert self.proc.stdout.readline().strip() == "ready"
        self.arrivals: dict[int, float] = {}

    def wait_for(self, ids: set[int], timeout: float = 120.0) -> None:
        deadline = time.time() + timeout
        while not ids <= self.arrivals.keys():
            if time.time() > deadline:
                raise TimeoutError(f"{len(ids - self.arrivals.keys())} messages never arrived")
            line = self.proc.stdout.readline()
            email_id, _, moment = line.strip().partition(" ")
            if email_id.isdigit():
                self.arrivals[int(email_id)] = float(moment)

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


CONFIG = """
users: [{username: sophie, password: "bench-supervisor", role: supervisor},
        {username: anna, password: "bench-agent-anna", role: agent}]
accounts:
  - {name: in, protocol: forwarding, address: support@acme.test, project: "101"}
  - {name: out, protocol: smtp, host: 127.0.0.1, port: PORT, security: none, auth: none, address: support@acme.test,
     display_name: Acme Support, default: true}
projects:
  - key: "101"
    name: Bench
    email: {shared_tickets: true}
    sender_accounts: [out]
    agents: [{username: anna, queues: {Default: 5}}]
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replies", type=int, default=200)
    parser.add_argument("--drain", type=int, default=1000)
    args = parser.parse_args()
    relay = Relay()
    inst = Installation()
    inst.run("migrate", "-v", "0")
    inst.run("apply", "-", input=CONFIG.replace("PORT", str(relay.port)))
    token = inst.run("token", "create", "anna").strip().splitlines()[-1]
    http = free_port()
    inst.start("web", "--http", f"127.0.0.1:{http}")
    inst.start("worker")
    wait_port(http)
    inst.django()
    from postdesk.accounts.models import User
    from postdesk.projects.models import Project
    from postdesk.testing.factories import inbound_email
    from postdesk.tickets.services import assign_email

    project = Project.objects.get(key="101")
    anna = User.objects.get(username="anna")
    ticket = assign_email(inbound_email(project, subject="Where is my order?"), title="Order", by=anna)
    time.sleep(3)  # the worker has loaded and is idle

    def reply(i):
        request = urllib.request.Request(
            f"http://127.0.0.1:{http}/api/v1/tickets/{ticket.number}/reply",
            data=json.dumps({"body": f"Reply number {i}: your parcel ships today.", "force": True}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}, method="POST")
        started = time.time()
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - our own local server
            body = json.loads(response.read())
        return body["id"], started

    for i in range(5):  # warm-up
        email_id, _ = reply(i)
        relay.wait_for({email_id})
    latencies, api_times = [], []
    for i in range(args.replies):
        email_id, started = reply(i)
        api_times.append((time.time() - started) * 1000)
        relay.wait_for({email_id})
        latencies.append((relay.arrivals[email_id] - started) * 1000)
        time.sleep(0.02)

    # drain: many replies queued at once
    from django.db import transaction

    from postdesk.emails.models import Kind
    from postdesk.mailboxes.models import EmailAccount
    from postdesk.outbound.services import queue_email

    account = EmailAccount.objects.get(name="out")
    with transaction.atomic():
        queued = {queue_email(project=project, account=account, kind=Kind.AGENT_REPLY, to=[f"c{i}@example.com"],
                              subject="Your order", text=f"Message {i}: it ships today.", sent_by=anna).pk
                  for i in range(args.drain)}
        committed_box = []
        transaction.on_commit(lambda: committed_box.append(time.time()))
    relay.wait_for(queued, timeout=600)
    committed = committed_box[0]
    drain_seconds = max(relay.arrivals[i] for i in queued) - committed
    inst.stop()
    relay.stop()
    save("outbound", {
        "reply_api_to_relay": summary(latencies),
        "reply_api_call": summary(api_times),
        "drain_messages": args.drain,
        "drain_seconds": round(drain_seconds, 2),
        "drain_msgs_per_s": round(args.drain / drain_seconds),
    })


if __name__ == "__main__":
    main()
