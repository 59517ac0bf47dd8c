"""Inbound processing CPU per message, in one process (SQLite installations): the ingest bench's messages spooled,
then processed from the spool in batches of the given sizes (analysis, storing, emails, threads, search index) as
a processing job does. No listener, no client, no second process: the worker's own cost, and what a batch costs
beyond its messages (fixed cost = slope between two batch sizes).

    .venv/bin/python bench/process.py [--messages 2400] [--batches 12 64]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Installation, save  # noqa: E402
from ingest import CONFIG, make_message  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2400)
    parser.add_argument("--batches", type=int, nargs="+", default=[12, 64])
    args = parser.parse_args()
    inst = Installation()
    inst.django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from postdesk.inbound import intake, processing, spool
    from postdesk.inbound.language import warm_up
    from postdesk.mailboxes.models import EmailAccount
    from postdesk.projects.config import apply_text

    apply_text(CONFIG)
    warm_up()
    gc.collect()
    gc.freeze()  # as the worker does after loading
    account = EmailAccount.objects.get(name="in")
    results = {}
    for round_, size in enumerate(args.batches):
        messages = [make_message(i, f"r{round_}") for i in range(args.messages)]
        for start in range(0, len(messages), 100):
            spool.put([intake.Delivery(raw=m, mail_from="c@example.com", rcpt_to=["support@acme.test"],
                                       accounts=[account]) for m in messages[start:start + 100]],
                      lambda moment: moment.isoformat())
        shared = processing.SharedContexts()
        started = time.process_time()
        while processing.process_spooled(size, None, shared) is not None:
            pass
        results[size] = (time.process_time() - started) / len(messages) * 1000
    sizes = sorted(results)
    fixed = None
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        fixed = (results[small] - results[large]) / (1 / small - 1 / large)
    save("process", {
        "messages_per_round": args.messages,
        "cpu_ms_per_msg_by_batch": {str(k): round(v, 3) for k, v in results.items()},
        "fixed_cpu_ms_per_batch": round(fixed, 2) if fixed is not None else None,
    })


if __name__ == "__main__":
    main()
