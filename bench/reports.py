"""Reports at a million emails (issues: email log p95 <= 50 ms for each filter alone and combined, first and deep
pages; full-text search p95 <= 100 ms; ticket list p95 <= 50 ms; a month of statistics p95 <= 100 ms; the inbox with
250 emails p95 < 100 ms server time).

Populates a fresh installation with `postdesk bench populate --emails N` (SQLite, or a throw-away PostgreSQL with
--postgres), then times each request in-process (Django test client: server time, no network), 30 runs after 3
warm-ups, and prints p50/p95 per case.

    .venv/bin/python bench/reports.py --emails 1000000 [--postgres]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Installation, save, summary  # noqa: E402

RUNS, WARM = 30, 3


def timed(client, path, params=None, headers=None) -> list[float]:
    out = []
    for i in range(RUNS + WARM):
        started = time.perf_counter()
        response = client.get(path, params or {}, **(headers or {}))
        elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, (path, params, response.status_code, response.content[:300])
        if i >= WARM:
            out.append(elapsed)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--emails", type=int, default=1_000_000)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    cluster = None
    url = None
    if args.postgres:
        from postdesk.testing.pgcluster import TempCluster

        cluster = TempCluster()
        url = cluster.start()
        import subprocess

        subprocess.run([*cluster.as_user, "psql", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres",
                        "-c", "CREATE DATABASE postdesk"], check=True, capture_output=True)
    try:
        inst = Installation(url)
        inst.run("migrate", "-v", "0")
        started = time.monotonic()
        inst.run("bench", "populate", "--emails", str(args.emails))
        populate_seconds = time.monotonic() - started
        inst.django()
        results = run_cases()
        from django.db import connection

        save(f"reports-{connection.vendor}-{args.emails}", {"database": connection.vendor, "emails": args.emails,
                                                          "populate_seconds": round(populate_seconds),
                                                          "cases": results})
    finally:
        if cluster is not None:
            cluster.stop()


def run_cases() -> dict:
    from django.test import Client

    from postdesk.accounts.models import User
    from postdesk.accounts.services import create_token
    from postdesk.core import clock
    from postdesk.tickets.models import Ticket

    supervisor, _ = User.objects.get_or_create(username="bench-supervisor", defaults={"role": "supervisor"})
    token = create_token(supervisor)
    api = Client()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    now = clock.now()
    month_from = (now - __import__("datetime").timedelta(days=30)).isoformat()
    month_to = now.isoformat()
    results = {}

    def case(name, path, params=None):
        results[name] = summary(timed(api, path, params, auth))
        print(f"{name:<45} p50 {results[name]['p50_ms']:7.1f} ms   p95 {results[name]['p95_ms']:7.1f} ms", flush=True)

    base = {"project": "101"}
    case("email log: first page", "/api/v1/emails", base)
    case("email log: also related to tickets", "/api/v1/emails", {**base, "include_ticketed": "true"})
    # a deep page: follow the cursor 40 pages (2,000 rows) in
    cursor = None
    for _ in range(40):
        page = api.get("/api/v1/emails", {**base, "include_ticketed": "true", **({"cursor": cursor} if cursor else {})},
                       **auth).json()
        cursor = page["next_cursor"]
    case("email log: deep page (40 pages in)", "/api/v1/emails", {**base, "include_ticketed": "true",
                                                                   "cursor": cursor})
    case("email log: direction", "/api/v1/emails", {**base, "direction": "in", "include_ticketed": "true"})
    case("email log: date range (30 days)", "/api/v1/emails", {**base, "date_from": month_from, "date_to": month_to,
                                                              "include_ticketed": "true"})
    case("email log: sender substring", "/api/v1/emails", {**base, "sender": "customer123",
                                                          "include_ticketed": "true"})
    case("email log: recipient substring", "/api/v1/emails", {**base, "recipient": "customer4567",
                                                             "include_ticketed": "true"})
    case("email log: subject", "/api/v1/emails", {**base, "subject": "Refund", "include_ticketed": "true"})
    case("email log: language", "/api/v1/emails", {**base, "language": "hu", "include_ticketed": "true"})
    case("email log: queue", "/api/v1/emails", {**base, "queue": "Magyar", "include_ticketed": "true"})
    ticket = Ticket.objects.order_by("-id").values_list("number", flat=True).first()
    case("email log: ticket", "/api/v1/emails", {**base, "ticket": ticket})
    case("email log: combined", "/api/v1/emails", {**base, "direction": "in", "date_from": month_from,
                                                  "date_to": month_to, "sender": "example", "language": "hu",
                                                  "queue": "Magyar", "include_ticketed": "true"})
    case("email log: combined, rare sender", "/api/v1/emails", {**base, "direction": "in", "date_from": month_from,
                                                               "date_to": month_to, "sender": "customer12",
                                                               "language": "en", "queue": "English",
                                                               "include_ticketed": "true"})
    case("full-text search: common word", "/api/v1/emails", {**base, "q": "order", "include_ticketed": "true"})
    case("full-text search: rare word", "/api/v1/emails", {**base, "q": "Rückerstattung", "include_ticketed": "true"})
    case("full-text search + date range", "/api/v1/emails", {**base, "q": "refund", "date_from": month_from,
                                                            "include_ticketed": "true"})
    case("ticket list: first page", "/api/v1/tickets", base)
    case("ticket list: type", "/api/v1/tickets", {**base, "type": "Complaint"})
    case("ticket list: agent + status", "/api/v1/tickets", {**base, "agent": "agent03", "status": "closed"})
    case("ticket list: date range", "/api/v1/tickets", {**base, "date_from": month_from, "date_to": month_to})
    month_start = now.date().replace(day=1).isoformat()
    case("statistics: a month", "/api/v1/stats/agents", {**base, "date_from": month_start,
                                                          "date_to": now.date().isoformat()})
    # the agent's inbox page with up to 250 emails (list size 250)
    agent = User.objects.get(username="agent04")
    browser = Client()
    browser.force_login(agent)
    results["inbox page (250 emails)"] = summary(timed(browser, "/inbox/"))
    rows = browser.get("/inbox/").content.count(b"data-href")
    results["inbox page (250 emails)"]["rows"] = rows
    print(f"{'inbox page (250 emails)':<45} p50 {results['inbox page (250 emails)']['p50_ms']:7.1f} ms   "
          f"p95 {results['inbox page (250 emails)']['p95_ms']:7.1f} ms   ({rows} rows)")
    return results


if __name__ == "__main__":
    main()
