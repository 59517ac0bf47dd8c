"""Durable intake: the raw bytes and the envelope are committed to the database before the listener answers 250.

The SMTP/LMTP listener and the HTTP inbound endpoint call ``store``; the listener goes through ``IntakeWriter``, one
thread that commits messages in small batches (group commit: one fsync for many messages under load). After the
commit the processing job is queued; if the process dies first, the worker's start-up recovery finds the rows."""

from __future__ import annotations

import hashlib
import json
import logging
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


@dataclass
class Stored:
    ids: list[int]  # IncomingMessage ids created (empty when every copy was a duplicate)
    duplicates: int


RAW_TABLE = RawMessage._meta.db_table
INCOMING_TABLE = IncomingMessage._meta.db_table


def store(delivery: Delivery) -> Stored:
    """Write one delivery (call inside a transaction). One IncomingMessage per distinct project.

    Plain SQL (the same statements on SQLite and PostgreSQL): this runs for every message before the 250, and the
    ORM's query building cost more than the writes themselves."""
    key = dedup_key(delivery.raw)
    by_project: dict[int, object] = {}
    for account in delivery.accounts:
        by_project.setdefault(account.project_id, account)
    fresh = list(by_project.items())
    duplicates = 0
    with connection.cursor() as cursor:
        if key is not None:
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
        ids = []
        rcpt = json.dumps(delivery.rcpt_to[:100])
        for project_id, account in fresh:
            cursor.execute(
                f"INSERT INTO {INCOMING_TABLE} (received_at, protocol, peer, helo, account_id, project_id, mail_from, "
                "rcpt_to, raw_id, dedup_key, state, attempts, error) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 0, '') "
                "ON CONFLICT DO NOTHING RETURNING id",
                [
                    moment,
                    delivery.protocol,
                    delivery.peer[:100],
                    delivery.helo[:255],
                    account.pk,
                    project_id,
                    delivery.mail_from[:998],
                    rcpt,
                    raw_id,
                    key,
                    IncomingMessage.State.PENDING,
                ],
            )
            row = cursor.fetchone()
            if row is not None:
                ids.append(row[0])
        if not ids:  # another listener stored the same message a moment ago
            cursor.execute(f"DELETE FROM {RAW_TABLE} WHERE id = %s", [raw_id])
    return Stored(ids, duplicates + len(fresh) - len(ids))


def store_now(delivery: Delivery) -> Stored:
    """Store and commit one delivery, then queue its processing (the HTTP endpoint's path)."""
    with transaction.atomic():
        stored = store(delivery)
    if stored.ids:
        notify_processing(stored.ids)
    return stored


def notify_processing(ids: list[int]) -> None:
    from postdesk.inbound.tasks import process_incoming

    try:
        process_incoming(ids)
    except (
        Exception
    ):  # the job store is unavailable: the worker's recovery and periodic sweep pick the rows up
        log.warning("could not queue inbound processing; the periodic sweep will pick the message up")


class IntakeWriter:
    """Group commit for the listener, inside its event loop: messages whose DATA ended in the same loop iteration are
    written in one transaction (one fsync) by a callback scheduled on the loop; each message's future resolves after
    the commit, and only then does its session answer 250. Writing on the loop itself avoids handing every message
    to another thread and back (under load those hand-offs, not the disk, were the limit).

    The processing jobs are queued after the commit, in a later loop callback."""

    def __init__(self, loop, max_batch: int = 200, window: float = 0.002, notify_every: float = 0.02):
        self.loop = loop
        self.window = window  # seconds to gather concurrent messages into one commit
        self.notify_every = notify_every  # seconds between processing jobs queued (each one carries many ids)
        self.max_batch = max_batch
        self._pending: list = []
        self._scheduled = False
        self._created: list[int] = []
        self._notify_scheduled = False

    def submit(self, delivery: Delivery):
        future = self.loop.create_future()
        self._pending.append((delivery, future))
        if not self._scheduled:
            self._scheduled = True
            self.loop.call_later(self.window, self._flush)
        return future

    def stop(self) -> None:
        if self._pending:
            self._flush()
        self._notify()

    def _flush(self) -> None:
        self._scheduled = False
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            self._created += self.write(batch)
        if self._created and not self._notify_scheduled:
            self._notify_scheduled = True
            self.loop.call_later(self.notify_every, self._notify)

    def _notify(self) -> None:
        self._notify_scheduled = False
        created, self._created = self._created, []
        for start in range(0, len(created), 64):
            notify_processing(created[start : start + 64])

    @staticmethod
    def write(batch) -> list[int]:
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
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                created += result.ids
                future.set_result(result)
        return created
