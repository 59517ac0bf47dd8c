"""`make test`: lint, then the whole suite on SQLite, then again on PostgreSQL (a throw-away server started here, or
the one named by POSTDESK_TEST_DATABASE_URL). Fails when a run collects no tests, when PostgreSQL cannot be started,
and (with POSTDESK_REQUIRE_ALL=1, as in CI) when corpus or browser tests would be skipped."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def step(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def pytest_run(label: str, env: dict, extra: list[str]) -> bool:
    report = ROOT / "var" / f"junit-{label}.xml"
    report.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    code = subprocess.call(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", *extra],
        cwd=ROOT,
        env=env,
    )
    elapsed = time.monotonic() - started
    if code == 5:
        print(f"{label}: pytest collected no tests: that is a failure", flush=True)
        return False
    tests = skipped = 0
    try:
        suite = ET.parse(report).getroot()  # noqa: S314 - our own pytest report
        for node in suite.iter("testsuite"):
            tests += int(node.get("tests", 0))
            skipped += int(node.get("skipped", 0))
    except (OSError, ET.ParseError):
        pass
    print(f"{label}: {tests} tests, {skipped} skipped, exit code {code}, {elapsed:.0f} s", flush=True)
    return code == 0 and tests > 0


def main() -> int:
    extra = sys.argv[1:]
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "POSTDESK_DATA_DIR")}
    base.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    ok = True

    step("lint (ruff)")
    ruff = Path(sys.executable).parent / "ruff"
    if subprocess.call([str(ruff), "check", "postdesk", "bench"], cwd=ROOT) != 0:
        ok = False

    step("tests on SQLite")
    ok = pytest_run("sqlite", dict(base), extra) and ok

    step("tests on PostgreSQL")
    url = os.environ.get("POSTDESK_TEST_DATABASE_URL")
    cluster = None
    if not url:
        from postdesk.testing.pgcluster import ClusterError, TempCluster

        try:
            cluster = TempCluster()
            url = cluster.start()
            print(f"started a temporary PostgreSQL server on port {cluster.port}", flush=True)
        except ClusterError as exc:
            print(f"PostgreSQL: {exc}", flush=True)
            if os.environ.get("POSTDESK_SKIP_POSTGRES") == "1":
                print("POSTDESK_SKIP_POSTGRES=1: PostgreSQL run skipped on request", flush=True)
            else:
                print("the suite must run on PostgreSQL too (set POSTDESK_SKIP_POSTGRES=1 to skip locally)")
                ok = False
    if url:
        try:
            ok = pytest_run("postgresql", {**base, "DATABASE_URL": url}, extra) and ok
        finally:
            if cluster is not None:
                cluster.stop()

    print("\nall green" if ok else "\nFAILED", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
