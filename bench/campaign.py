"""Mass email benchmark (issue: >= 1,000 msg/s on this 2-core machine): a personalised campaign with DKIM signing and
open/click/unsubscribe tracking into a local SMTP sink (aiosmtpd, its own process), against the raw smtplib rate to
the same sink in the same run (same message size, same number of connections).

    .venv/bin/python bench/campaign.py [--recipients 20000]
"""

from __future__ import annotations

import argparse
import os
import smtplib
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Installation, Sink, machine_cpu, process_cpu, save  # noqa: E402


def raw_rate(port: int, message: bytes, count: int, connections: int) -> float:
    def worker(n):
        with smtplib.SMTP("127.0.0.1", port) as client:
            for _ in range(n):
                client.sendmail("bounce@acme.test", ["reader@example.com"], message)

    threads = [threading.Thread(target=worker, args=(count // connections,)) for _ in range(connections)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return count / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=20000)
    args = parser.parse_args()
    sink = Sink()
    inst = Installation()
    inst.env["POSTDESK_PUBLIC_URL"] = "https://desk.acme.test"
    inst.run("migrate", "-v", "0")
    worker = inst.start("worker")
    inst.django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from postdesk.campaigns import sender, services
    from postdesk.core import clock
    from postdesk.mailboxes.services import upsert_account
    from postdesk.projects.services import create_project, upsert_template

    project = create_project(key="101", name="Bench")
    account, _ = upsert_account({"name": "news", "protocol": "mass", "address": "news@acme.test",
                                 "domain": "acme.test", "display_name": "Acme News"})
    account.host, account.port, account.security, account.auth = "127.0.0.1", sink.port, "none", "none"
    account.verified_at = clock.now()
    account.save()
    upsert_template(project, "offers", {
        "subject": "Autumn offers for {{ name }}",
        "body": "Hello {{ name }},\n\nYour customer number is {{ customer }}.\n" + "Our offers this autumn. " * 30,
        "body_html": "<p>Hello {{ name }},</p><p>Your customer number is {{ customer }}.</p>"
                     + "<p>Our offers this autumn.</p>" * 20
                     + '<p><a href="https://shop.acme.test/autumn">Shop</a> <a href="https://acme.test/">Home</a></p>',
    })
    template = project.templates.get(name="offers")
    recipients = [{"email": f"reader{i}@example.com", "fields": {"name": f"Reader {i}", "customer": str(100000 + i)}}
                  for i in range(args.recipients)]
    from postdesk.campaigns.models import Campaign

    time.sleep(3)  # the worker is up
    created = time.monotonic()
    campaign = services.create_campaign(project=project, account=account, template=template, recipients=recipients)
    create_seconds = time.monotonic() - created
    started = time.monotonic()  # the worker's jobs (one per core) send it
    busy, sink_cpu = machine_cpu(), process_cpu(sink.proc.pid)
    while Campaign.objects.filter(pk=campaign.pk, status__in=["queued", "sending"]).exists():
        if worker.poll() is not None:
            raise RuntimeError(worker.stderr.read().decode()[-3000:])
        time.sleep(0.05)
    seconds = time.monotonic() - started
    busy, sink_cpu = machine_cpu() - busy, process_cpu(sink.proc.pid) - sink_cpu
    campaign.refresh_from_db()
    inst.stop()
    prepared = sender.Prepared(campaign)
    sample = prepared.render(1, "<x@acme.test>", "reader@example.com", recipients[0]["fields"])
    raw_count = min(args.recipients, 10000)
    raw_sink_cpu = process_cpu(sink.proc.pid)
    reference = raw_rate(sink.port, sample, raw_count, sender.CONNECTIONS)
    raw_sink_cpu = process_cpu(sink.proc.pid) - raw_sink_cpu
    sink.stop()
    save("campaign", {
        "recipients": args.recipients,
        "message_bytes": len(sample),
        "status": campaign.status,
        "sent": campaign.sent,
        "create_campaign_seconds": round(create_seconds, 2),
        "campaign_msgs_per_s": round(campaign.sent / seconds),
        "raw_smtplib_msgs_per_s": round(reference),
        "ratio_to_raw": round(campaign.sent / seconds / reference, 2),
        # where the machine's CPU went while the campaign was sent, per message: the sink's share is the
        # reference's cost, the rest is postdesk (the worker, its database) and the benchmark's polling
        "cpu_ms_per_msg": round(busy / campaign.sent * 1000, 3),
        "sink_cpu_ms_per_msg": round(sink_cpu / campaign.sent * 1000, 3),
        "sender_cpu_ms_per_msg": round((busy - sink_cpu) / campaign.sent * 1000, 3),
        "raw_sink_cpu_ms_per_msg": round(raw_sink_cpu / raw_count * 1000, 3),
        "connections_per_job": sender.CONNECTIONS,
        "worker_cpus": os.cpu_count(),
    })


if __name__ == "__main__":
    main()
