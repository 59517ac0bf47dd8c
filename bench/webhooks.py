"""Webhooks do not slow the requests that cause them (issue 10, acceptance 3): an agent's "new ticket from this email"
and "reply" through the HTTP API (Django's test client, in-process, SQLite in WAL mode, the SQLite job store with
fsync, as in production), in a project with no webhook endpoint and in one with five endpoints on a local receiver,
interleaved request by request so that drift on the machine moves both sides alike.

The delivery jobs are only queued during the measurement (the job store queues; no worker runs), so what is measured
is what the request pays: the endpoint lookup, the delivery rows, the job queued after the commit. With --worker, a
real `postdesk worker` delivers to the receiver while the requests are measured (the machine's cores are shared).
Afterwards every queued delivery is sent and the receiver's count checked.

    .venv/bin/python bench/webhooks.py [--iterations 300] [--worker]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Installation, Sink, free_port, save, summary  # noqa: E402

RECEIVER_SCRIPT = """
import sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
count = 0
lock = threading.Lock()
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        global count
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with lock:
            count += 1
        self.send_response(204)
        self.end_headers()
    def log_message(self, *a):
        pass
server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
threading.Thread(target=server.serve_forever, daemon=True).start()
sys.stdout.write("ready\\n"); sys.stdout.flush()
sys.stdin.read()
sys.stdout.write(f"{count}\\n"); sys.stdout.flush()
"""


class Receiver:
    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", RECEIVER_SCRIPT, str(self.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.proc.stdout.readline()

    def stop(self) -> int:
        self.proc.stdin.close()
        count = int(self.proc.stdout.readline() or 0)
        self.proc.wait(timeout=10)
        return count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--endpoints", type=int, default=5)
    parser.add_argument(
        "--worker", action="store_true", help="deliver with a real worker during the measurement"
    )
    args = parser.parse_args()

    receiver = Receiver()
    sink = Sink()
    inst = Installation()
    inst.env["POSTDESK_ALLOW_PRIVATE_WEBHOOKS"] = "1"  # the receiver is on 127.0.0.1
    inst.run("migrate", "-v", "0")
    inst.django()
    from django.db import transaction
    from django.test import Client

    from postdesk.accounts.models import User
    from postdesk.accounts.services import create_token
    from postdesk.integrations import delivery
    from postdesk.integrations.models import WebhookDelivery, WebhookEndpoint
    from postdesk.integrations.services import create_webhook
    from postdesk.mailboxes.services import upsert_account
    from postdesk.projects.services import create_project, set_sender_accounts, set_skill
    from postdesk.testing.factories import inbound_email

    agent = User.objects.create(username="anna", role="agent", first_name="Anna")
    account, _ = upsert_account(
        {
            "name": "out",
            "protocol": "smtp",
            "address": "support@acme.test",
            "host": "127.0.0.1",
            "port": sink.port,
            "security": "none",
            "auth": "none",
            "is_default": True,
        }
    )
    projects = {}
    for key, endpoints in (("100", 0), ("105", args.endpoints)):
        project = create_project(key=key, name=f"{endpoints} webhooks")
        set_skill(project, agent, project.default_queue, 5)
        set_sender_accounts(project, [account])
        for i in range(endpoints):
            create_webhook(
                project,
                url=f"http://127.0.0.1:{receiver.port}/hook/{i}",
                events=["email", "ticket"],
                secret="bench-secret-0123456789",
            )
        projects[endpoints] = project
    with transaction.atomic():
        pending = {
            n: [
                inbound_email(p, subject=f"Order {i}", sender=f"customer{i}@example.com").pk
                for i in range(args.iterations + 10)
            ]
            for n, p in projects.items()
        }
    client = Client()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {create_token(agent)}"}

    def post(path, data):
        response = client.post(path, json.dumps(data), content_type="application/json", **headers)
        assert response.status_code in (200, 201), response.content
        return response.json()

    # the time the requests spend in the event hooks themselves (the rest of the difference is noise or commit cost)
    from postdesk.integrations import events

    in_hooks = {n: 0.0 for n in projects}
    current = {"n": 0}

    def timed(fn):
        def inner(*a, **k):
            started = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                in_hooks[current["n"]] += time.perf_counter() - started

        return inner

    for name in ("email_received", "email_sent", "ticket_added", "ticket_updated", "emails_joined"):
        setattr(events, name, timed(getattr(events, name)))

    worker = inst.start("worker") if args.worker else None
    if worker is not None:
        time.sleep(3)
    timings = {n: {"create": [], "reply": []} for n in projects}
    for i in range(args.iterations + 10):
        for n in projects if i % 2 else reversed(list(projects)):  # alternate which goes first
            current["n"] = n
            started = time.perf_counter()
            ticket = post(f"/api/v1/emails/{pending[n][i]}/ticket", {"new": {"title": f"Order {i}"}})
            created = time.perf_counter()
            post(
                f"/api/v1/tickets/{ticket['number']}/reply", {"body": "Your order left the warehouse today."}
            )
            replied = time.perf_counter()
            if i >= 10:  # warm-up
                timings[n]["create"].append((created - started) * 1000)
                timings[n]["reply"].append((replied - created) * 1000)
    if worker is not None:
        inst.stop()

    queued = WebhookDelivery.objects.count()
    drain_started = time.monotonic()
    for endpoint in WebhookEndpoint.objects.all():
        while WebhookDelivery.objects.filter(endpoint=endpoint, state="pending").exists():
            if not delivery.run(endpoint.pk):
                break
    drain_seconds = time.monotonic() - drain_started
    states = {s: WebhookDelivery.objects.filter(state=s).count() for s in ("pending", "delivered", "failed")}
    received = receiver.stop()
    sink.stop()

    result = {
        "iterations": args.iterations,
        "endpoints": args.endpoints,
        "worker_during_measurement": args.worker,
    }
    for n, parts in timings.items():
        both = [c + r for c, r in zip(parts["create"], parts["reply"], strict=True)]
        result[f"{n}_endpoints"] = {
            "create_ticket": summary(parts["create"]),
            "reply": summary(parts["reply"]),
            "create_plus_reply": summary(both),
        }
    for n in projects:
        result[f"{n}_endpoints"]["in_event_hooks_ms_per_create_plus_reply"] = round(
            in_hooks[n] * 1000 / (args.iterations + 10), 3
        )
    base, hooked = result["0_endpoints"], result[f"{args.endpoints}_endpoints"]
    parts = ("create_ticket", "reply", "create_plus_reply")
    result["ratio_p50"] = {k: round(hooked[k]["p50_ms"] / base[k]["p50_ms"], 3) for k in parts}
    result["ratio_p95"] = {k: round(hooked[k]["p95_ms"] / base[k]["p95_ms"], 3) for k in parts}
    result["deliveries"] = {
        "written": queued,
        **states,
        "received": received,
        "drain_seconds": round(drain_seconds, 2),
    }
    save("webhooks" + ("-worker" if args.worker else ""), result)


if __name__ == "__main__":
    main()
