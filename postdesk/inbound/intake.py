"""Durable intake: the raw bytes and the envelope are committed to the database before the listener answers 250.

The SMTP/LMTP listener and the HTTP inbound endpoint call ``store``; the listener goes through ``IntakeWriter``, one
thread that commits messages in small batches (group commit: one fsync for many messages under load). After the
commit the processing job is queued; if the process dies first, the worker's start-up recovery finds the rows."""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
import time
from dataclasses import dataclass, field

from django.db import connection, transaction

from postdesk.core import clock
from postdesk.emails.models import RawMessage
from postdesk.inbound.dedup import dedup_key
from postdesk.inbound.models import IncomingMessage

log = logging.getLogger(__name__)


@dataclass
class Delivery:
    """One accepted message: the raw bytes, the envelope and the forwarding accounts it was addressed to."""

    raw: bytes
    mail_from: str
    rcpt_to: list[str]
    accounts: list  # EmailAccount rows (forwarding), one per accepted recipient
    protocol: str = "smtp"
    peer: str = ""
    helo: str = ""
    received_at: object = field(default_factory=clock.now)
    spool_key: str | None = None  # set when the message comes from the intake spool (already deduplicated there)
    dedup_key: str | None = None  # computed when spooled


@dataclass
class Stored:
    ids: list[int]  # IncomingMessage ids created (empty when every copy was a duplicate)
    duplicates: int
    rows: list = field(default_factory=list)  # those IncomingMessage rows, as written (not read back)


RAW_TABLE = RawMessage._meta.db_table
INCOMING_TABLE = IncomingMessage._meta.db_table


def store(delivery: Delivery) -> Stored:
    """Write one delivery (call inside a transaction). One IncomingMessage per distinct project.

    Plain SQL (the same statements on SQLite and PostgreSQL): this runs for every message before the 250, and the
    ORM's query building cost more than the writes themselves."""
    key = delivery.dedup_key if delivery.spool_key else dedup_key(delivery.raw)
    by_project: dict[int, object] = {}
    for account in delivery.accounts:
        by_project.setdefault(account.project_id, account)
    fresh = list(by_project.items())
    duplicates = 0
    with connection.cursor() as cursor:
        if key is not None and not delivery.spool_key:  # the spool has deduplicated already
            marks = ", ".join(["%s"] * len(by_project))
            cursor.execute(
                f"SELECT project_id FROM {INCOMING_TABLE} WHERE dedup_key = %s AND project_id IN ({marks})",
                [key, *by_project],
            )
            seen = {row[0] for row in cursor.fetchall()}
            duplicates = len(seen)
            fresh = [(p, a) for p, a in fresh if p not in seen]
        if not fresh:
            return Stored([], duplicates)
        moment = connection.ops.adapt_datetimefield_value(delivery.received_at)
        cursor.execute(
            f"INSERT INTO {RAW_TABLE} (data, sha256, created_at) VALUES (%s, %s, %s) RETURNING id",
            [delivery.raw, hashlib.sha256(delivery.raw).hexdigest(), moment],
        )
        raw_id = cursor.fetchone()[0]
        rows = []
        rcpt = delivery.rcpt_to[:100]
        rcpt_json = json.dumps(rcpt)
        for project_id, account in fresh:
            cursor.execute(
                f"INSERT INTO {INCOMING_TABLE} (received_at, protocol, peer, helo, account_id, project_id, mail_from, "
                "rcpt_to, raw_id, dedup_key, spool_key, state, attempts, error) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 0, '') "
                "ON CONFLICT DO NOTHING RETURNING id",
                [
                    moment,
                    delivery.protocol,
                    delivery.peer[:100],
                    delivery.helo[:255],
                    account.pk,
                    project_id,
                    delivery.mail_from[:998],
                    rcpt_json,
                    raw_id,
                    key,
                    delivery.spool_key,
                    IncomingMessage.State.PENDING,
                ],
            )
            row = cursor.fetchone()
            if row is not None:
                rows.append(IncomingMessage(
                    pk=row[0], received_at=delivery.received_at, protocol=delivery.protocol,
                    peer=delivery.peer[:100], helo=delivery.helo[:255], account_id=account.pk,
                    project_id=project_id, mail_from=delivery.mail_from[:998], rcpt_to=rcpt, raw_id=raw_id,
                    dedup_key=key, spool_key=delivery.spool_key, state=IncomingMessage.State.PENDING, attempts=0,
                ))
        if not rows:  # another listener stored the same message a moment ago (or the spool handed it over twice)
            cursor.execute(f"DELETE FROM {RAW_TABLE} WHERE id = %s", [raw_id])
    return Stored([row.pk for row in rows], duplicates + len(fresh) - len(rows), rows)


def store_now(delivery: Delivery) -> Stored:
    """Store and commit one delivery, then queue its processing (the HTTP endpoint's path)."""
    with transaction.atomic():
        stored = store(delivery)
    if stored.ids:
        notify_processing(stored.ids)
    return stored


def notify_processing(ids: list[int]) -> None:
    """Queue the processing of stored messages (IncomingMessage ids)."""
    from postdesk.inbound.tasks import process_incoming

    try:
        process_incoming(ids)
    except (
        Exception
    ):  # the job store is unavailable: the worker's recovery and periodic sweep pick the rows up
        log.warning("could not queue inbound processing; the periodic sweep will pick the message up")


class IntakeWriter:
    """Group commit for the listener: messages are handed to one writer thread, which commits everything that
    arrived meanwhile in one transaction (one fsync) and then resolves each message's future on the event loop; only
    then does its session answer 250. While the writer waits for the database (another process holding the SQLite
    write lock), the event loop keeps serving every session, and the next batch simply grows.

    Processing jobs are queued after the commits, at most every `notify_every` seconds, each carrying many ids."""

    def __init__(self, loop, max_batch: int = 200, notify_every: float = 0.005):
        self.loop = loop
        self.max_batch = max_batch
        self.notify_every = notify_every
        self._queue: queue.Queue = queue.Queue()
        self._created: list[int] = []
        self._notified = 0.0
        self._thread = threading.Thread(target=self._run, name="intake-writer", daemon=True)
        self._thread.start()

    def submit(self, delivery: Delivery):
        future = self.loop.create_future()
        self._queue.put((delivery, future))
        return future

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self.notify_every)
            except queue.Empty:
                self._notify(force=True)
                continue
            if item is None:
                self._notify(force=True)
                return
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                batch.append(nxt)
            self._created += self.write(batch)
            self._notify()

    def _notify(self, force: bool = False) -> None:
        if not self._created or (not force and time.monotonic() - self._notified < self.notify_every):
            return
        created, self._created = self._created, []
        self._notified = time.monotonic()
        from postdesk.inbound import spool

        if spool.enabled():
            notify_spool()
            return
        for start in range(0, len(created), 64):
            notify_processing(created[start : start + 64])

    def write(self, batch) -> list[int]:
        from postdesk.inbound import spool

        if spool.enabled():
            return self._write_spool(batch)
        connection.close_if_unusable_or_obsolete()
        try:
            with transaction.atomic():
                results = [store(d) for d, _ in batch]
        except Exception as exc:
            log.warning("batch of %d failed to store (%s); retrying one by one", len(batch), exc)
            results = []
            for delivery, _future in batch:
                try:
                    with transaction.atomic():
                        results.append(store(delivery))
                except Exception as single:  # storage error: the listener answers 451, the sender retries
                    results.append(single)
        created: list[int] = []
        for (_, future), result in zip(batch, results, strict=True):
            if not isinstance(result, Exception):
                created += result.ids
            self.loop.call_soon_threadsafe(_resolve, future, result)
        return created


    def _write_spool(self, batch) -> list[int]:
        from postdesk.inbound import spool

        try:
            ids = spool.put([d for d, _ in batch], lambda moment: moment.isoformat())
            results = [Stored([i], 0) if i is not None else Stored([], 1) for i in ids]
        except Exception as exc:  # storage error: the listener answers 451, the sender retries
            log.error("could not spool %d message(s): %s", len(batch), exc)
            results = [exc] * len(batch)
        created = []
        for (_, future), result in zip(batch, results, strict=True):
            if not isinstance(result, Exception):
                created += result.ids
            self.loop.call_soon_threadsafe(_resolve, future, result)
        return created


def notify_spool() -> None:
    """Queue a job that moves spooled messages into the database and processes them, unless every processing slot
    is busy: those jobs run until the spool is empty (and look again after letting their slot go)."""
    from postdesk.inbound import spool
    from postdesk.inbound.tasks import process_spool

    try:
        if spool.slot_free():
            process_spool()
    except Exception:  # the job store is unavailable: the worker's recovery and periodic sweep pick them up
        log.warning("could not queue spool processing; the periodic sweep will pick the messages up")


def _resolve(future, result) -> None:
    if future.done():
        return
    if isinstance(result, Exception):
        future.set_exception(result)
    else:
        future.set_result(result)
