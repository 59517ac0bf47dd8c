"""The intake spool (SQLite installations): the listener commits each message to its own small SQLite file
(WAL, synchronous=FULL) before answering 250, so it never waits for the main database's single write lock, which
the worker holds while it processes. The worker moves spooled messages into the main database (IncomingMessage +
RawMessage, idempotent through the spool id) and processes them there.

With PostgreSQL (many writers at once, possibly several listener machines) the listener writes to the main
database directly and there is no spool."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at TEXT NOT NULL,
    protocol TEXT NOT NULL,
    peer TEXT NOT NULL,
    helo TEXT NOT NULL,
    mail_from TEXT NOT NULL,
    rcpt_to TEXT NOT NULL,
    targets TEXT NOT NULL,      -- JSON [[account_id, project_id], ...], one per project
    dedup_key TEXT,
    raw BLOB NOT NULL,
    claimed_by TEXT,
    claimed_at REAL
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS seen (
    project_id INTEGER NOT NULL,
    dedup_key TEXT NOT NULL,
    PRIMARY KEY (project_id, dedup_key)
) WITHOUT ROWID;
"""
CLAIM_TIMEOUT = 300.0  # seconds after which a claim by a worker that died is taken over


def enabled() -> bool:
    return settings.CONFIG.database_vendor == "sqlite"


def path() -> Path:
    return settings.CONFIG.data_dir / "spool.sqlite3"


_local = threading.local()


def connect() -> sqlite3.Connection:
    """One connection per thread (and process: reopened after a fork)."""
    conn = getattr(_local, "conn", None)
    if conn is None or getattr(_local, "pid", None) != os.getpid() or getattr(_local, "path", None) != path():
        conn = sqlite3.connect(path(), timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA secure_delete=ON")
        conn.executescript(SCHEMA)
        conn.execute("INSERT OR IGNORE INTO meta (name, value) VALUES ('generation', ?)", (uuid.uuid4().hex[:12],))
        _local.generation = conn.execute("SELECT value FROM meta WHERE name = 'generation'").fetchone()[0]
        _local.conn, _local.pid, _local.path = conn, os.getpid(), path()
    return conn


@contextmanager
def _writing(conn: sqlite3.Connection):
    """A write transaction that takes the lock at once (BEGIN IMMEDIATE): committed, or rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def spool_key(spool_id: int) -> str:
    """A key unique across spool files (a new file restarts ids): '<generation>:<id>'."""
    connect()
    return f"{_local.generation}:{spool_id}"


def put(deliveries, moment_text) -> list:
    """Spool deliveries in one transaction; per delivery, its spool id or None when every copy was a duplicate (the
    same message already received for each of its projects). Raises sqlite3.Error on a storage failure."""
    from postdesk.inbound.dedup import dedup_key

    conn = connect()
    results = []
    with _writing(conn):
        for delivery in deliveries:
            key = dedup_key(delivery.raw)
            targets = {}
            for account in delivery.accounts:
                targets.setdefault(account.project_id, account.pk)
            if key is not None:
                fresh = {}
                for project_id, account_id in targets.items():
                    cursor = conn.execute("INSERT OR IGNORE INTO seen (project_id, dedup_key) VALUES (?, ?)",
                                          (project_id, key))
                    if cursor.rowcount:
                        fresh[project_id] = account_id
                targets = fresh
            if not targets:
                results.append(None)
                continue
            cursor = conn.execute(
                "INSERT INTO spool (received_at, protocol, peer, helo, mail_from, rcpt_to, targets, dedup_key, raw) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (moment_text(delivery.received_at), delivery.protocol, delivery.peer[:100], delivery.helo[:255],
                 delivery.mail_from[:998], json.dumps(delivery.rcpt_to[:100]),
                 json.dumps([[a, p] for p, a in targets.items()]), key, delivery.raw),
            )
            results.append(cursor.lastrowid)
    return results


def claim(limit: int = 64, slot: int | None = None) -> tuple[str, list[tuple]]:
    """Claim up to `limit` spooled messages (oldest first) for this worker: (token, rows).

    A worker holding a processing slot claims under it ('slot<n>:<token>') and first takes back what holders of
    free slots left claimed: a live holder lets its claims go before its slot, so those are a killed worker's
    (taken over at once instead of after CLAIM_TIMEOUT)."""
    conn = connect()
    token = uuid.uuid4().hex if slot is None else f"slot{slot}:{uuid.uuid4().hex}"
    now = time.time()
    with _writing(conn):
        if slot is not None:
            _take_back_orphans(conn, slot)
        conn.execute(
            "UPDATE spool SET claimed_by = ?, claimed_at = ? WHERE id IN (SELECT id FROM spool "
            "WHERE claimed_by IS NULL OR claimed_at < ? ORDER BY id LIMIT ?)",
            (token, now, now - CLAIM_TIMEOUT, limit),
        )
    rows = conn.execute(
        "SELECT id, received_at, protocol, peer, helo, mail_from, rcpt_to, targets, dedup_key, raw FROM spool "
        "WHERE claimed_by = ? ORDER BY id", (token,)).fetchall()
    return token, rows


def _take_back_orphans(conn: sqlite3.Connection, own: int) -> None:
    """Claims made under this worker's own slot (by a holder before it) or under a slot nobody holds (checked by
    holding it meanwhile, so that no new holder claims under it at the same moment) are let go."""
    orphaned = [own]
    held = []
    try:
        for number in range(processing_slots()):
            if number != own:
                fd = _try_slot(number)
                if fd is not None:
                    held.append(fd)
                    orphaned.append(number)
        conn.executemany("UPDATE spool SET claimed_by = NULL WHERE claimed_by LIKE ?",
                         [(f"slot{number}:%",) for number in orphaned])
    finally:
        for fd in held:
            os.close(fd)


def set_aside(ids: list[int]) -> None:
    """Messages that could not be stored while others could: claimed by nobody for CLAIM_TIMEOUT, then tried
    again (a bad message does not hold up every batch it would be claimed with)."""
    if not ids:
        return
    conn = connect()
    with _writing(conn):
        conn.executemany("UPDATE spool SET claimed_by = 'aside', claimed_at = ? WHERE id = ?",
                         [(time.time(), i) for i in ids])


def release(ids: list[int]) -> None:
    """Forget spooled messages once they are committed in the main database."""
    if not ids:
        return
    conn = connect()
    with _writing(conn):
        conn.executemany("DELETE FROM spool WHERE id = ?", [(i,) for i in ids])


def processing_slots() -> int:
    """How many processes move and process spooled mail at once: one per core by default. More only share the
    same cores (and SQLite's one write lock), so every batch takes longer and waits longer in the spool."""
    return settings.CONFIG.inbound_processes or os.cpu_count() or 1


def _slot_path(number: int) -> Path:
    return settings.CONFIG.data_dir / f"spool.slot{number}.lock"


@contextmanager
def processing_slot():
    """One of the processing slots (an flock on a small file next to the spool, let go when the process dies),
    or None when every slot is taken: those processes go on until the spool is empty."""
    for number in range(processing_slots()):
        fd = _try_slot(number)
        if fd is None:
            continue
        try:
            yield number
        finally:
            os.close(fd)  # closing the only descriptor lets the lock go
        return
    yield None


def _try_slot(number: int) -> int | None:
    """A descriptor holding slot `number`'s lock, or None when another holds it."""
    fd = os.open(_slot_path(number), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def slot_free() -> bool:
    """Whether a processing slot is free (the listener queues a job only then: busy slots take new mail on their
    next round)."""
    with processing_slot() as number:
        return number is not None


def unclaimed() -> int:
    """Spooled messages no worker has claimed yet."""
    return connect().execute("SELECT COUNT(*) FROM spool WHERE claimed_by IS NULL").fetchone()[0]


def pending() -> int:
    return connect().execute("SELECT COUNT(*) FROM spool").fetchone()[0]


def forget_keys(project_id: int, keys: list[str]) -> None:
    """Retention: dedup keys of deleted messages (so the same message could be received again)."""
    conn = connect()
    conn.executemany("DELETE FROM seen WHERE project_id = ? AND dedup_key = ?", [(project_id, k) for k in keys])


def reset() -> None:
    """Tests: empty the spool."""
    conn = connect()
    conn.execute("DELETE FROM spool")
    conn.execute("DELETE FROM seen")
