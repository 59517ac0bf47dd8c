"""A real postdesk installation for the crash and fault tests: a temporary data directory, `postdesk migrate` and
`postdesk apply`, the roles (`postdesk smtpd`, `postdesk worker`, `postdesk web`) as subprocesses in their own process
groups so that a test can kill -9 one role with everything it forked, and Python snippets run against the
installation's database (the test process itself is bound to the test database).

Also a relay sink for outbound tests that records every message it accepted (by X-Postdesk-Id) and can answer
slowly, so that a sender is likely to be killed in the middle of a transmission."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRELUDE = (
    "import json, os, django\n"
    "os.environ['DJANGO_SETTINGS_MODULE'] = 'postdesk.settings'\n"
    "django.setup()\n"
    "result = None\n"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


class Installation:
    """A fresh postdesk in a temporary data directory (SQLite, or the PostgreSQL database at `database_url`)."""

    def __init__(self, database_url: str | None = None, *, workers: int = 2, env: dict | None = None):
        self.dir = Path(tempfile.mkdtemp(prefix="postdesk-proof-"))
        # nothing of the test run's own configuration leaks in (its memory job store, its relaxed fsync, its database)
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("POSTDESK_", "DJANGO_")) and k != "DATABASE_URL"
        }
        base.update(
            POSTDESK_DATA_DIR=str(self.dir),
            POSTDESK_LOG_LEVEL="WARNING",
            POSTDESK_WORKERS=str(workers),
            PYTHONUNBUFFERED="1",
        )
        if database_url:
            base["DATABASE_URL"] = database_url
        base.update(env or {})
        self.env = base
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}

    # commands -------------------------------------------------------------------------------------------------------

    def run(self, *args: str, input: str | None = None, timeout: float = 300) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "postdesk", *args],
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )
        if result.returncode != 0:
            raise RuntimeError(f"postdesk {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def setup(self, config: str) -> None:
        self.run("migrate", "-v", "0")
        self.run("apply", "-", input=config)

    def python(self, code: str, timeout: float = 300):
        """Run a snippet with Django set up against this installation; it sets `result` (JSON-serialisable)."""
        script = PRELUDE + code + "\nprint('@@RESULT@@' + json.dumps(result))\n"
        out = subprocess.run(
            [sys.executable, "-c", script],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )
        if out.returncode != 0:
            raise RuntimeError(f"snippet failed:\n{out.stdout}\n{out.stderr}")
        marker = out.stdout.rindex("@@RESULT@@")
        return json.loads(out.stdout[marker + len("@@RESULT@@") :])

    # roles ----------------------------------------------------------------------------------------------------------

    def start(self, name: str, *args: str) -> subprocess.Popen:
        """Start a role in its own process group (kill() takes the role's forked workers with it)."""
        log = self.dir / f"{name}.log"
        self.logs[name] = log
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "postdesk", *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=ROOT,
            )
        self.procs[name] = proc
        return proc

    def kill(self, name: str) -> None:
        """kill -9 the role and every process it forked."""
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    def terminate(self, name: str, timeout: float = 30) -> None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=timeout)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)

    def wait_listening(self, name: str, port: int, timeout: float = 60.0) -> None:
        """Wait until the role listens on the port; fail with its log if it exits or never listens."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive(name):
                raise RuntimeError(f"{name} exited before listening on {port}:\n{self.log(name)[-3000:]}")
            try:
                wait_port(port, 0.5)
                return
            except TimeoutError:
                continue
        raise TimeoutError(f"{name} does not listen on {port} after {timeout} s:\n{self.log(name)[-3000:]}")

    def alive(self, name: str) -> bool:
        proc = self.procs.get(name)
        return proc is not None and proc.poll() is None

    def log(self, name: str) -> str:
        path = self.logs.get(name)
        return path.read_text(errors="replace") if path and path.exists() else ""

    def close(self) -> None:
        for name in list(self.procs):
            self.kill(name)
        if os.environ.get("POSTDESK_PROOF_KEEP") != "1":  # keep the data directory and role logs to debug
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# The relay ---------------------------------------------------------------------------------------------------------

ID_HEADER = re.compile(rb"^X-Postdesk-Id:\s*(\d+)", re.I | re.M)


class RecordingRelay:
    """An SMTP relay on 127.0.0.1 (aiosmtpd, in a thread of this process) that records the X-Postdesk-Id and the
    recipients of every message it accepted. `delay` seconds pass between the end of DATA (the message is recorded:
    the relay has it) and the 250, the window in which a sender killed cannot know the outcome."""

    def __init__(self, delay: float = 0.0):
        from aiosmtpd.controller import Controller

        self.delay = delay
        self.port = free_port()
        self.accepted: list[tuple[int | None, tuple[str, ...]]] = []
        self.lock = threading.Lock()
        relay = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                data = envelope.original_content or envelope.content or b""
                match = ID_HEADER.search(data[:20000])
                with relay.lock:
                    relay.accepted.append((int(match.group(1)) if match else None, tuple(envelope.rcpt_tos)))
                if relay.delay:
                    await asyncio.sleep(relay.delay)
                return "250 2.0.0 Accepted"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def count(self) -> int:
        with self.lock:
            return len(self.accepted)

    def by_id(self) -> Counter:
        with self.lock:
            return Counter(i for i, _ in self.accepted)

    def by_recipient(self) -> Counter:
        with self.lock:
            return Counter(r for _, rcpts in self.accepted for r in rcpts)

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()
