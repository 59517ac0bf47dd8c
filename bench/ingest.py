"""Inbound ingest benchmark (issue: 400+ msg/s on this 2-core machine).

~10 KB multipart messages (text + HTML + a 4 KB attachment, five languages) over 10 parallel SMTP sessions into
`postdesk smtpd` with `postdesk worker` running, timed from the first byte until every message is stored, parsed,
threaded, routed and searchable (in the full-text index). The same client first pushes the same messages into a bare
aiosmtpd sink: the reference. Latency: from the 250 after DATA to the email row (and its index entry) being visible.

    .venv/bin/python bench/ingest.py [--messages 4000] [--sessions 10] [--database-url postgres://...]
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import smtplib
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Installation, Sink, free_port, machine_cpu, process_cpu, save, summary, tree_cpu, wait_port  # noqa: E402

TEXTS = {
    "en": "Hello, I ordered a kettle three weeks ago and it still has not arrived. The tracking page says the parcel "
    "left the warehouse but nothing happened since then. Could you please check what is going on and tell me "
    "when I can expect the delivery? I would also like to know whether I can get a refund for the shipping. ",
    "hu": "Jó napot kívánok! Három hete rendeltem egy vízforralót, de még mindig nem érkezett meg. A csomagkövetés "
    "szerint a csomag elhagyta a raktárat, azóta azonban semmi sem történt. Kérem, nézzék meg, mi a helyzet, és "
    "írják meg, mikor számíthatok a szállításra. Szeretném tudni, visszakaphatom-e a szállítási díjat. ",
    "de": "Guten Tag, ich habe vor drei Wochen einen Wasserkocher bestellt und er ist immer noch nicht angekommen. "
    "Laut Sendungsverfolgung hat das Paket das Lager verlassen, aber seitdem ist nichts passiert. Könnten Sie "
    "bitte nachsehen und mir sagen, wann ich mit der Lieferung rechnen kann? ",
    "fr": "Bonjour, j'ai commandé une bouilloire il y a trois semaines et elle n'est toujours pas arrivée. Le suivi "
    "indique que le colis a quitté l'entrepôt, mais rien ne s'est passé depuis. Pourriez-vous vérifier et me "
    "dire quand je peux espérer la livraison ? ",
    "es": "Hola, pedí un hervidor hace tres semanas y todavía no ha llegado. El seguimiento dice que el paquete salió "
    "del almacén, pero desde entonces no ha pasado nada. ¿Podrían comprobar qué ocurre y decirme cuándo puedo "
    "esperar la entrega? ",
}

CONFIG = """
users: [{username: sophie, password: "bench-supervisor", role: supervisor}]
accounts:
  - {name: in, protocol: forwarding, address: support@acme.test, project: "101"}
projects:
  - key: "101"
    name: Bench
    email: {language_detection: true, email_queue: true}
    queues:
      languages: [{name: English, language: en}, {name: Magyar, language: hu}, {name: Deutsch, language: de},
                  {name: Francais, language: fr}, {name: Espanol, language: es}]
"""


def make_message(i: int, run: str) -> bytes:
    lang = list(TEXTS)[i % len(TEXTS)]
    import textwrap

    text = "\r\n".join(textwrap.wrap((TEXTS[lang] * 6)[:4000], 76))
    html = "<html><body><p>" + text.replace(". ", ".</p>\r\n<p>") + "</p></body></html>"
    attachment = base64.encodebytes(random.Random(i).randbytes(4400)).decode().replace("\n", "\r\n")
    parts = [
        f"From: Customer {i} <customer{i % 500}@example.com>",
        "To: support@acme.test",
        f"Subject: Order {100000 + i} has not arrived",
        f"Message-ID: <bench-{run}-{i}@example.com>",
        "Date: Thu, 26 Nov 2026 10:00:00 +0000",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="mixed"',
        "",
        "--mixed",
        'Content-Type: multipart/alternative; boundary="alt"',
        "",
        "--alt",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "",
        text,
        "--alt",
        "Content-Type: text/html; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "",
        html,
        "--alt--",
        "--mixed",
        'Content-Type: application/pdf; name="invoice.pdf"',
        'Content-Disposition: attachment; filename="invoice.pdf"',
        "Content-Transfer-Encoding: base64",
        "",
        attachment,
        "--mixed--",
        "",
    ]
    return "\r\n".join(parts).encode()


def push(port: int, messages: list[bytes], sessions: int, acks: dict | None = None) -> float:
    """Send all messages over `sessions` parallel connections; returns seconds from first byte to last 250."""
    chunks = [messages[i::sessions] for i in range(sessions)]
    errors = []

    def worker(chunk):
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
                for data in chunk:
                    client.sendmail("customer@example.com", ["support@acme.test"], data)
                    if acks is not None:
                        acks[
                            data[
                                data.index(b"Message-ID: <") + 13 : data.index(
                                    b">", data.index(b"Message-ID: <")
                                )
                            ]
                        ] = time.monotonic()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    run = str(int(time.time()))
    messages = [make_message(i, run) for i in range(args.messages)]
    size = sum(map(len, messages)) / len(messages)

    sink = Sink()
    try:
        reference_cpu = machine_cpu()
        sink_seconds = push(sink.port, messages, args.sessions)
        reference_cpu = machine_cpu() - reference_cpu
    finally:
        sink.stop()

    inst = Installation(args.database_url)
    inst.run("migrate", "-v", "0")
    inst.run("apply", "-", input=CONFIG)
    smtp_port = free_port()
    listener = inst.start("smtpd", "--smtp", f"127.0.0.1:{smtp_port}", "--lmtp", "off")
    worker = inst.start("worker")
    wait_port(smtp_port)
    # the worker is ready (language models loaded) when it opens its job doorbell: the clock must not run while it
    # loads, or the first seconds of the run measure its start-up instead of the intake
    bell = inst.dir / "jobs.sqlite3.bell"
    deadline = time.monotonic() + 120
    while not bell.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1)  # its processes fork and settle
    inst.django()
    from django.db import connection

    from postdesk.emails.models import Email

    seen: dict[bytes, float] = {}
    acks: dict[bytes, float] = {}
    stop = threading.Event()

    def observe():
        # one connection and one plain statement per look (every 5 ms): the observer shares the 2 cores with what
        # it measures (through the ORM, reconnecting each time, it took ~0.5 ms of CPU per message). Rows become
        # visible out of id order when transactions commit out of order (PostgreSQL, several workers): ids skipped
        # below the highest seen are looked at again until they show up (or for 10 s: a rolled-back insert)
        last, gaps = 0, []  # gaps: [first, last, since] ranges of ids not seen yet below `last`
        table = Email._meta.db_table
        with connection.cursor() as cursor:
            while not stop.is_set():
                where = " OR ".join(["id > %s"] + ["id BETWEEN %s AND %s"] * len(gaps))
                cursor.execute(f"SELECT id, message_id FROM {table} WHERE {where} ORDER BY id",
                               [last, *[v for lo, hi, _ in gaps for v in (lo, hi)]])
                rows = cursor.fetchall()
                now = time.monotonic()
                for pk, mid in rows:
                    seen[mid.strip("<>").encode()] = now
                    if pk > last:
                        if pk > last + 1:
                            gaps.append([last + 1, pk - 1, now])
                        last = pk
                        continue
                    for gap in gaps:
                        if gap[0] <= pk <= gap[1]:
                            gaps.remove(gap)
                            gaps += [g for g in ([gap[0], pk - 1, gap[2]], [pk + 1, gap[1], gap[2]]) if g[0] <= g[1]]
                            break
                gaps = [g for g in gaps if now - g[2] < 10]
                time.sleep(0.005)
        connection.close()

    observer = threading.Thread(target=observe)
    observer.start()
    try:
        cpu = [machine_cpu(), tree_cpu(listener.pid), tree_cpu(worker.pid), process_cpu(os.getpid())]
        started = time.monotonic()
        push_seconds = push(smtp_port, messages, args.sessions, acks)
        deadline = time.monotonic() + 600
        while len(seen) < len(messages) and time.monotonic() < deadline:
            time.sleep(0.01)
        total = time.monotonic() - started
        cpu = [after - before for after, before in zip(
            [machine_cpu(), tree_cpu(listener.pid), tree_cpu(worker.pid), process_cpu(os.getpid())], cpu, strict=True)]
    finally:
        stop.set()
        observer.join()
        inst.stop()
    from postdesk.emails import search
    from postdesk.emails.models import Email as E

    match = search.matching_ids_sql("kettle")
    with connection.cursor() as cursor:
        cursor.execute(match[0], match[1])
        searchable = len(cursor.fetchall())
    latencies = [(seen[k] - acks[k]) * 1000 for k in acks if k in seen]
    routed = dict(E.objects.values_list("queue__name").annotate(__import__("django").db.models.Count("id")))
    save(
        "ingest",
        {
            "database": connection.vendor,
            "messages": len(messages),
            "avg_message_bytes": round(size),
            "sessions": args.sessions,
            "sink_msgs_per_s": round(len(messages) / sink_seconds),
            "smtp_acked_msgs_per_s": round(len(messages) / push_seconds),
            "end_to_end_msgs_per_s": round(len(seen) / total),
            "processed": len(seen),
            "searchable_kettle_matches": searchable,
            "ack_to_visible": summary(latencies),
            # CPU per message: the whole machine, the listener, the worker (all its processes), this client (its
            # sessions and the observer polling the email list)
            "cpu_ms_per_msg": {name: round(value / len(messages) * 1000, 3) for name, value in
                               zip(("machine", "listener", "worker", "client"), cpu, strict=True)},
            "machine_busy": round(cpu[0] / total / os.cpu_count(), 3),
            # the same client and a bare sink: the machine's speed in this run (it varies by 20-30 % here)
            "reference_cpu_ms_per_msg": round(reference_cpu / len(messages) * 1000, 3),
            "queues": routed,
        },
    )


if __name__ == "__main__":
    main()
