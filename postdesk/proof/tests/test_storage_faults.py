"""Storage faults: the database locked, the disk full, PostgreSQL down. The listener answers 4xx (the sender keeps the
message and retries), the API answers 503, nothing acknowledged is lost, and once the fault clears the same client's
retry is stored and processed without anyone doing anything.

How each fault is made (on SQLite the listener commits to its intake spool file, the HTTP intake and everything else
to the main database: both files get the fault):
- database locked (SQLite): another connection holds the write lock (BEGIN IMMEDIATE) of both files longer than the
  busy timeout, lowered to half a second for the test;
- disk full (SQLite): `PRAGMA max_page_count` lowered to the current size on every open connection, so that a write
  needing a new page fails with SQLITE_FULL ("database or disk is full"), exactly as on a full file system;
- PostgreSQL down: a throw-away server (postdesk.testing.pgcluster) under a real installation (smtpd, web and worker
  as subprocesses) is stopped with `pg_ctl stop -m immediate` and started again.
"""

from __future__ import annotations

import smtplib
import sqlite3
import time
import urllib.error
import urllib.request

import pytest
from django.db import connection, connections
from django.db.backends.signals import connection_created

from postdesk.emails.models import Email
from postdesk.inbound.models import IncomingMessage
from postdesk.testing.factories import raw_message
from postdesk.testing.listener import Listener, wait_until

sqlite_only = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="an SQLite fault; PostgreSQL's are in test_postgresql_down_*"
)


def send(port: int, raw: bytes, client: smtplib.SMTP | None = None) -> smtplib.SMTP:
    client = client or smtplib.SMTP("127.0.0.1", port, timeout=30)
    client.sendmail("customer@example.com", ["support@acme.test"], raw)
    return client


def stored(message_id: str) -> int:
    return Email.objects.filter(message_id=message_id).count()


def sweep() -> None:
    """What the worker's periodic sweep and start-up recovery do: process whatever is still pending (a processing
    job that ran into the fault failed; the message itself was stored)."""
    from postdesk.inbound import spool, tasks

    if spool.enabled():
        tasks.process_spool.call_local()
    tasks.process_incoming.call_local()


class SpoolFaults:
    """The intake spool's connections (one per thread, opened lazily), with a short busy timeout and, while `full`
    is on, no room to grow."""

    def __init__(self, monkeypatch):
        from postdesk.inbound import spool

        self.full = False
        self.seen = []
        real = spool.connect

        def connect():
            conn = real()
            if conn not in self.seen:
                self.seen.append(conn)
                conn.execute("PRAGMA busy_timeout=500")
            DiskFull._limit(conn, self.full)
            return conn

        monkeypatch.setattr(spool, "connect", connect)

    def path(self):
        from postdesk.inbound import spool

        return str(spool.path()) if spool.enabled() else None

    def set_full(self, full: bool) -> None:
        self.full = full
        for conn in self.seen:
            if full:
                conn.execute("VACUUM")
            DiskFull._limit(conn, full)


@pytest.fixture
def spool_faults(monkeypatch):
    return SpoolFaults(monkeypatch)


@pytest.fixture
def short_busy_timeout(monkeypatch, spool_faults):
    """Connections opened from now on give up on a lock after half a second (the default is 30 s)."""
    monkeypatch.setitem(connections.settings["default"]["OPTIONS"], "timeout", 0.5)
    connection.close()


@pytest.fixture
def sam_token(sam):
    from postdesk.accounts.services import create_token

    return create_token(sam)


def post_inbound(client, token: str, raw: bytes):
    return client.post(
        "/api/v1/inbound/support-in", raw, content_type="message/rfc822", HTTP_AUTHORIZATION=f"Bearer {token}"
    )


@sqlite_only
@pytest.mark.django_db(transaction=True)
def test_a_locked_database_gives_451_and_503_and_the_retry_is_stored_once(
    forwarding, sam_token, short_busy_timeout, spool_faults, client
):
    first = raw_message(message_id="<before-the-lock@example.com>")
    locked = raw_message(message_id="<during-the-lock@example.com>")
    over_http = raw_message(message_id="<over-http@example.com>")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {sam_token}"}
    with Listener(lmtp=False) as listener:
        smtp = send(listener.smtp_port, first)
        sweep()  # the inline processing job may meet the test's own reads; the worker's sweep would retry
        wait_until(lambda: stored("<before-the-lock@example.com>") == 1)
        assert (
            client.get("/api/v1/emails", **auth).status_code == 200
        )  # the token is fresh: reads need no write
        names = [connection.settings_dict["NAME"], spool_faults.path()]
        holders = [sqlite3.connect(name, timeout=0) for name in names if name]
        for holder in holders:
            holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            with pytest.raises(smtplib.SMTPDataError) as refused:
                send(listener.smtp_port, locked, smtp)
            assert refused.value.smtp_code == 451 and b"4.3.0" in refused.value.smtp_error
            response = post_inbound(client, sam_token, over_http)
            assert response.status_code == 503 and "try again" in response.json()["detail"]
            assert client.get("/api/v1/emails", **auth).status_code == 200  # WAL: reading goes on
            assert client.get("/health").status_code == 200
        finally:
            for holder in holders:
                holder.rollback()
                holder.close()
        send(listener.smtp_port, locked, smtp)  # the sender's retry, on the same connection
        assert post_inbound(client, sam_token, over_http).status_code == 202
        smtp.quit()
        sweep()
        wait_until(lambda: stored("<during-the-lock@example.com>") and stored("<over-http@example.com>"))
    sweep()
    assert [
        stored(m)
        for m in ("<before-the-lock@example.com>", "<during-the-lock@example.com>", "<over-http@example.com>")
    ] == [1, 1, 1]
    assert set(IncomingMessage.objects.values_list("state", flat=True)) == {"done"}


class DiskFull:
    """Every connection of this process (the test's, the listener's) refuses to grow the database file while on."""

    def __init__(self):
        self.connections = []
        self.full = False
        connection_created.connect(self._track)

    def _track(self, sender, connection, **kwargs):
        self.connections.append(connection)
        if self.full:
            self._limit(connection.connection, True)

    @staticmethod
    def _limit(raw, full: bool) -> None:
        pages = raw.execute("PRAGMA page_count").fetchone()[0] if full else 1073741823
        raw.execute(f"PRAGMA max_page_count={pages}")

    def close(self):
        connection_created.disconnect(self._track)

    def _set(self, full: bool):
        self.full = full
        for conn in self.connections:
            if conn.connection is not None:
                self._limit(conn.connection, full)

    def on(self):
        self._set(True)

    def off(self):
        self._set(False)


@sqlite_only
@pytest.mark.django_db(transaction=True)
def test_a_full_disk_gives_451_and_503_and_the_retry_is_stored_once_space_is_back(
    forwarding, sam_token, spool_faults, client
):
    big = "A line of a long complaint that needs many database pages to store.\n" * 20_000  # ~1.4 MB
    big = big.replace("\n", "\r\n")
    first = raw_message(message_id="<before-full@example.com>")
    full = raw_message(message_id="<while-full@example.com>", body=big)
    over_http = raw_message(message_id="<http-while-full@example.com>", body=big)
    disk = DiskFull()
    connection.close()  # reopened below, tracked
    try:
        with Listener(lmtp=False) as listener:
            smtp = send(listener.smtp_port, first)  # opens (and tracks) the listener's connection
            assert client.get("/health").status_code == 200  # opens the test's connection
            sweep()
            wait_until(lambda: stored("<before-full@example.com>") == 1)
            with connection.cursor() as cursor:
                cursor.execute(
                    "VACUUM"
                )  # no free pages left to reuse: the next large write must grow the file
            disk.on()
            spool_faults.set_full(True)
            with pytest.raises(smtplib.SMTPDataError) as refused:
                send(listener.smtp_port, full, smtp)
            assert refused.value.smtp_code == 451
            assert post_inbound(client, sam_token, over_http).status_code == 503
            disk.off()
            spool_faults.set_full(False)
            send(listener.smtp_port, full, smtp)
            assert post_inbound(client, sam_token, over_http).status_code == 202
            smtp.quit()
            sweep()
            wait_until(lambda: stored("<while-full@example.com>") and stored("<http-while-full@example.com>"))
    finally:
        disk.off()
        disk.close()
    sweep()
    assert stored("<while-full@example.com>") == 1 and stored("<http-while-full@example.com>") == 1
    assert set(IncomingMessage.objects.values_list("state", flat=True)) == {"done"}


# PostgreSQL down -----------------------------------------------------------------------------------------------------


class StoppableCluster:
    """A throw-away PostgreSQL server that can be stopped and started again on the same data directory."""

    def __init__(self):
        from postdesk.testing.pgcluster import ClusterError, TempCluster

        try:
            self.cluster = TempCluster()
        except ClusterError as exc:
            pytest.skip(str(exc))
        self.data = str(self.cluster.dir / "data")

    def options(self) -> str:
        # durable, unlike the suite's throw-away server (fsync=off, synchronous_commit=off): an immediate stop must
        # not take commits with it, or the test would blame postdesk for what the server's settings lost
        c = self.cluster
        return f"-p {c.port} -k {c.dir} -c listen_addresses=127.0.0.1 -c max_connections=200"

    def start(self) -> str:
        import shutil

        import psycopg

        c = self.cluster
        if c.as_user:
            shutil.chown(c.dir, "postgres", "postgres")
        c._run(c.initdb, "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")
        self.resume()
        with psycopg.connect(c.url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE postdesk")
        return c.url

    def halt(self) -> None:
        self.cluster._run(self.cluster.pg_ctl, "-D", self.data, "-m", "immediate", "-w", "stop")

    def resume(self) -> None:
        c = self.cluster
        c._run(
            c.pg_ctl,
            "-D",
            self.data,
            "-o",
            self.options(),
            "-l",
            str(c.dir / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self) -> None:
        self.cluster.stop()


def http(method: str, url: str, token: str | None = None, data: bytes | None = None) -> int:
    request = urllib.request.Request(url, data=data, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "message/rfc822")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - 127.0.0.1 only
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


PG_CONFIG = """
users: [{username: sam, password: "proof-supervisor-pw", role: supervisor}]
accounts:
  - {name: support-in, protocol: forwarding, address: support@acme.test, project: "101"}
projects:
  - {key: "101", name: Proof}
"""


@pytest.mark.slow
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="runs in the PostgreSQL pass (it starts and stops a PostgreSQL server of its own)",
)
def test_postgresql_down_gives_4xx_and_503_and_everything_recovers_by_itself():
    from postdesk.proof.harness import Installation, free_port

    cluster = StoppableCluster()
    url = cluster.start()
    try:
        with Installation(url) as inst:
            inst.setup(PG_CONFIG)
            token = inst.run("token", "create", "sam").strip().splitlines()[-1]
            smtp_port, web_port = free_port(), free_port()
            inst.start("smtpd", "smtpd", "--smtp", f"127.0.0.1:{smtp_port}", "--lmtp", "off")
            inst.start("web", "web", "--http", f"127.0.0.1:{web_port}", "--workers", "1")
            inst.start("worker", "worker")
            inst.wait_listening("smtpd", smtp_port)
            inst.wait_listening("web", web_port)
            base = f"http://127.0.0.1:{web_port}"
            smtp = send(smtp_port, raw_message(message_id="<pg-up@example.com>"))
            assert http("GET", f"{base}/api/v1/emails", token) == 200

            cluster.halt()
            down = raw_message(message_id="<pg-down@example.com>")
            with pytest.raises(smtplib.SMTPResponseException) as refused:
                send(smtp_port, down, smtp)
            assert 400 <= refused.value.smtp_code < 500
            assert http("GET", f"{base}/api/v1/emails", token) == 503
            assert http("POST", f"{base}/api/v1/inbound/support-in", token, down) == 503
            assert http("GET", f"{base}/health") == 503

            cluster.resume()
            deadline = time.monotonic() + 60
            while True:  # the sender retries, as an MTA does, on a new connection
                try:
                    send(smtp_port, down).quit()
                    break
                except (OSError, smtplib.SMTPException):
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(1)
            assert http("GET", f"{base}/health") == 200
            assert (
                http("POST", f"{base}/api/v1/inbound/support-in", token, down) == 202
            )  # a duplicate: stored once
            counts = None
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                counts = inst.python(
                    "from postdesk.emails.models import Email\n"
                    "from postdesk.inbound.models import IncomingMessage\n"
                    "result = [Email.objects.filter(message_id='<pg-up@example.com>').count(),"
                    " Email.objects.filter(message_id='<pg-down@example.com>').count(),"
                    " IncomingMessage.objects.exclude(state='done').count()]"
                )
                if counts == [1, 1, 0]:
                    break
                time.sleep(1)
            assert counts == [1, 1, 0], inst.log("worker")[-3000:]
    finally:
        cluster.stop()
