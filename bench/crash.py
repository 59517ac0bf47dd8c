"""Crash benchmark (issue 11, acceptance 1): kill -9 under load, then count what was lost and what was duplicated.

Three scenarios against a real installation (postdesk/proof/crash.py, the same code as the CI test
postdesk/proof/tests/test_crash.py, with longer runs here):
- inbound: 10 parallel SMTP sessions into `postdesk smtpd`, the listener killed with SIGKILL three times at random
  moments and restarted; every message that got a 250 must exist exactly once, processed;
- outbound: the worker killed three times while it sends replies to a relay: no email sent twice;
- campaign: the worker killed three times mid-campaign: no recipient gets two copies.

    .venv/bin/python bench/crash.py [--seconds 40] [--emails 600] [--recipients 3000] [--database-url postgres://...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save  # noqa: E402

from postdesk.proof import crash  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=40, help="inbound load duration")
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--emails", type=int, default=600, help="outbound emails")
    parser.add_argument("--recipients", type=int, default=3000, help="campaign recipients")
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--only", choices=("inbound", "outbound", "campaign"), default=None)
    args = parser.parse_args()
    results = {}
    if args.only in (None, "inbound"):
        results["inbound"] = crash.inbound(
            seconds=args.seconds,
            sessions=args.sessions,
            kills=args.kills,
            database_url=args.database_url,
            seed=args.seed,
        )
    if args.only in (None, "outbound"):
        results["outbound"] = crash.outbound(
            emails=args.emails, kills=args.kills, database_url=args.database_url
        )
    if args.only in (None, "campaign"):
        results["campaign"] = crash.campaign(
            recipients=args.recipients, kills=args.kills, database_url=args.database_url
        )
    label = "postgresql" if args.database_url else "sqlite"
    save(f"crash-{label}" + (f"-{args.only}" if args.only else ""), results)
    failed = [
        name
        for name, r in results.items()
        if r.get("lost") or r.get("duplicated") or r.get("missing_otherwise")
    ]
    if failed:
        raise SystemExit(f"crash safety violated in: {', '.join(failed)}")


if __name__ == "__main__":
    main()
