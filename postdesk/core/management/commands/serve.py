"""`postdesk serve`: every role in one command: web UI and API, SMTP/LMTP listener, background worker.

Each role runs in its own child process (`postdesk web`, `postdesk smtpd`, `postdesk worker`); a child that dies is
restarted; SIGTERM or Ctrl-C stops them all cleanly. Ports are checked before anything starts."""

import os
import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from postdesk.core.netaddr import AddressError, ensure_free, parse_hostport


class Command(BaseCommand):
    help = "Run every role: web + API, SMTP and LMTP listener, background worker."

    def add_arguments(self, parser):
        parser.add_argument("--http", default="127.0.0.1:8000")
        parser.add_argument("--smtp", default="127.0.0.1:2525", help="HOST:PORT or 'off'")
        parser.add_argument("--lmtp", default="127.0.0.1:2424", help="HOST:PORT or 'off'")
        parser.add_argument("--no-worker", action="store_true", help="do not run the background worker here")

    def handle(self, *args, **options):
        try:
            checks = [("HTTP", options["http"])]
            checks += [(r.upper(), options[r]) for r in ("smtp", "lmtp") if options[r] != "off"]
            for role, value in checks:
                ensure_free(*parse_hostport(value), role)
        except AddressError as exc:
            raise CommandError(str(exc))
        executor = MigrationExecutor(connection)
        if executor.migration_plan(executor.loader.graph.leaf_nodes()):
            raise CommandError("the database is not up to date: run `postdesk migrate` first")
        connection.close()

        base = [sys.executable, "-m", "postdesk"]
        roles = {"web": base + ["web", "--http", options["http"]]}
        if options["smtp"] != "off" or options["lmtp"] != "off":
            roles["smtpd"] = base + ["smtpd", "--smtp", options["smtp"], "--lmtp", options["lmtp"]]
        if not options["no_worker"]:
            roles["worker"] = base + ["worker"]
        Supervisor(roles, self.stdout).run()


class Supervisor:
    def __init__(self, roles: dict[str, list[str]], out):
        self.roles = roles
        self.out = out
        self.children: dict[str, subprocess.Popen] = {}
        self.stopping = False
        self.restarts: dict[str, list[float]] = {}

    def start(self, name: str) -> None:
        self.children[name] = subprocess.Popen(self.roles[name], env=os.environ.copy())

    def stop_all(self, *_):
        self.stopping = True

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self.stop_all)
        signal.signal(signal.SIGINT, self.stop_all)
        for name in self.roles:
            self.start(name)
        self.out.write(f"postdesk running: {', '.join(self.roles)} (pid {os.getpid()}); Ctrl-C to stop")
        try:
            while not self.stopping:
                time.sleep(0.2)
                for name, child in list(self.children.items()):
                    code = child.poll()
                    if code is None or self.stopping:
                        continue
                    recent = [t for t in self.restarts.get(name, []) if time.monotonic() - t < 60]
                    if len(recent) >= 5:
                        self.out.write(f"{name} keeps exiting (code {code}); stopping")
                        self.stopping = True
                        self.exit_code = 1
                        break
                    self.out.write(f"{name} exited with code {code}; restarting")
                    self.restarts[name] = recent + [time.monotonic()]
                    self.start(name)
        finally:
            for child in self.children.values():
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 15
            for child in self.children.values():
                try:
                    child.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.kill()
        if getattr(self, "exit_code", 0):
            raise SystemExit(self.exit_code)
