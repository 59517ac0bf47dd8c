"""Webhook events. The services call these inside the transaction that makes the change:

- ``email_received(email)``: a customer's email was stored (inbound.processing.write_batch; not delivery reports);
- ``email_sent(email)``: an agent's email was queued (outbound.services.queue_email; not automatic responses,
  disposition or mass email);
- ``ticket_added(ticket)`` (tickets.services.create_ticket);
- ``ticket_updated(ticket, changed)``: only the changed attributes plus the identifiers; ``changed`` is a dict of
  vendor field -> new value, or an iterable of vendor field names whose values are read from the database;
- ``emails_joined(ticket, emails)``: emails joined a ticket: its counters, times and status (tickets.services);
- ``ticket_deleted(ticket)`` / ``tickets_deleted(tickets)``: before the rows go (retention).

Each writes one WebhookDelivery row per enabled endpoint of the project subscribed to that event family, and the
endpoints are woken once the transaction commits. Rows are ordered per ticket (ordering key ``ticket:<id>``; emails
not on a ticket: ``thread:<id>``). An update of a ticket added in the same transaction rewrites that 'add' instead,
so a ticket made from an email arrives as one 'add' with its committed state.

The request that caused an event pays for a few small statements and nothing else: the reads and writes here are
plain SQL (the ORM's query building would cost more than the statements themselves), and the delivery job is queued
by a background thread (on SQLite the job store fsyncs every job), so the request never waits for the job store nor
for a receiver. If the process stops before that thread queues the job, the minute sweep (tasks.deliver_due) delivers.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable

from django.db import connection, transaction
from django.utils.dateparse import parse_datetime

from postdesk.core import clock, jobs
from postdesk.emails.models import Direction, Kind
from postdesk.integrations import payloads
from postdesk.integrations.models import WebhookDelivery

log = logging.getLogger(__name__)

EMAIL_RECEIVED = "email.received"
EMAIL_SENT = "email.sent"
TICKET_ADD = "ticket.add"
TICKET_UPDATE = "ticket.update"
TICKET_DELETE = "ticket.delete"
PING = "ping"


def dumps(payload: dict) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


# Waking the endpoints after the commit ------------------------------------------------------------------------------


class _Transaction:
    """What one outermost transaction emitted: the endpoints to wake once it commits, and the tickets it added."""

    def __init__(self):
        self.endpoint_ids: set[int] = set()
        self.added: set[int] = set()
        self.endpoints: dict[
            int, list[tuple[int, list]]
        ] = {}  # project id -> its enabled endpoints, once read
        self.fired = False

    def __call__(self):  # on commit
        self.fired = True
        if self.endpoint_ids:
            _queue(sorted(self.endpoint_ids))


def _current(create: bool = True) -> _Transaction | None:
    """This transaction's record (registered with on_commit on first use), or None outside a transaction. A record
    registered in a savepoint that was rolled back is gone from the connection's list, so a new one is made."""
    conn = transaction.get_connection()
    if not conn.in_atomic_block:
        return None
    for entry in conn.run_on_commit:
        if isinstance(entry[1], _Transaction) and not entry[1].fired:
            return entry[1]
    if not create:
        return None
    state = _Transaction()
    transaction.on_commit(state)
    return state


def forget_endpoints() -> None:
    """Endpoints were added, changed or removed in this transaction: read them again (integrations.services)."""
    state = _current(create=False)
    if state is not None:
        state.endpoints.clear()


COALESCE_SECONDS = (
    0.2  # endpoints woken within this long share one job (at most a few job-store writes a second)
)


class _Waker:
    """Queues the delivery job from a background thread: endpoints woken close together share one job."""

    def __init__(self):
        self._reset()

    def _reset(self):
        self.cond = threading.Condition()
        self.ids: set[int] = set()
        self.thread: threading.Thread | None = None

    def wake(self, ids: Iterable[int]) -> None:
        with self.cond:
            self.ids.update(ids)
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="postdesk-webhook-waker", daemon=True)
                self.thread.start()
            self.cond.notify()

    def _run(self):
        from postdesk.integrations.tasks import deliver_webhooks

        while True:
            with self.cond:
                while not self.ids:
                    self.cond.wait()
            time.sleep(COALESCE_SECONDS)  # let a burst of commits gather into one job
            with self.cond:
                ids, self.ids = sorted(self.ids), set()
            try:
                deliver_webhooks(ids)
            except Exception:  # the job store is down: the minute sweep delivers
                log.exception("could not queue webhook deliveries for endpoints %s", ids)


_waker = _Waker()
os.register_at_fork(after_in_child=_waker._reset)


def _queue(endpoint_ids: list[int]) -> None:
    from postdesk.integrations.tasks import deliver_webhooks

    if jobs.huey.immediate:  # tests: inline, right after the commit
        jobs.on_commit(deliver_webhooks, endpoint_ids)
    else:
        _waker.wake(endpoint_ids)


def wake(endpoint_ids: Iterable[int]) -> None:
    """Deliver these endpoints' due deliveries once the current transaction commits (at once outside one)."""
    state = _current()
    if state is None:
        _queue(sorted(set(endpoint_ids)))
    else:
        state.endpoint_ids.update(endpoint_ids)


# Plain SQL ------------------------------------------------------------------------------------------------------------


@functools.cache
def _sql() -> dict[str, str]:
    from postdesk.accounts.models import User
    from postdesk.emails.models import Email, EmailContent, MessageIdIndex
    from postdesk.integrations.models import WebhookEndpoint
    from postdesk.projects.models import Project, TicketType
    from postdesk.tickets.models import Ticket

    q = connection.ops.quote_name
    delivery_table = q(WebhookDelivery._meta.db_table)
    return {
        "endpoints": f"SELECT id, events FROM {q(WebhookEndpoint._meta.db_table)} WHERE project_id = %s AND enabled = %s",
        "ticket": (
            "SELECT t.id, t.record_id, t.number, t.title, tt.export_value, t.description, t.created_at, "
            "t.last_open_time, t.soft_deadline, t.status, t.substatus, t.creator_id, cu.username, "
            f"p.{q('key')}, p.name, t.owner_id, ou.username, t.first_sent_time, t.last_sent_time, "
            "t.first_received_time, t.last_received_time, t.last_close_time, t.sent_count, t.received_count "
            f"FROM {q(Ticket._meta.db_table)} t JOIN {q(Project._meta.db_table)} p ON p.id = t.project_id "
            f"LEFT JOIN {q(TicketType._meta.db_table)} tt ON tt.id = t.type_id "
            f"LEFT JOIN {q(User._meta.db_table)} cu ON cu.id = t.creator_id "
            f"LEFT JOIN {q(User._meta.db_table)} ou ON ou.id = t.owner_id WHERE t.id = %s"
        ),
        "email": (
            f"SELECT e.id, p.{q('key')}, e.record_id, tk.record_id, e.ticket_id, e.reply_to_email_id, e.sent_by_id, "
            f"e.direction, e.from_name, e.from_address, e.{q('to')}, e.cc, e.bcc, e.sent_at, e.created_at, e.status, "
            f"e.subject, e.reply_to, e.message_id, e.in_reply_to, e.{q('date')}, c.text, e.project_id "
            f"FROM {q(Email._meta.db_table)} e JOIN {q(Project._meta.db_table)} p ON p.id = e.project_id "
            f"LEFT JOIN {q(Ticket._meta.db_table)} tk ON tk.id = e.ticket_id "
            f"LEFT JOIN {q(EmailContent._meta.db_table)} c ON c.email_id = e.id WHERE e.id = %s"
        ),
        "message_email": (
            f"SELECT email_id FROM {q(MessageIdIndex._meta.db_table)} WHERE project_id = %s AND message_id = %s"
        ),
        "insert": (
            f"INSERT INTO {delivery_table} (endpoint_id, event, ordering_key, payload, state, attempts, "
            "next_attempt_at, last_error, created_at) VALUES (%s, %s, %s, %s, %s, 0, %s, '', %s)"
        ),
        "rewrite": (
            f"UPDATE {delivery_table} SET payload = %s WHERE event = %s AND ordering_key = %s AND state = %s "
            "AND endpoint_id IN ({ids})"
        ),
    }


def _aware(value) -> dt.datetime | None:
    """A datetime column as an aware UTC datetime (SQLite hands back text, PostgreSQL datetimes)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = parse_datetime(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _json(value) -> list:
    if value is None:
        return []
    return json.loads(value) if isinstance(value, (str, bytes)) else value


_TICKET_TIMES = (
    "created_at",
    "last_open_time",
    "soft_deadline",
    "first_sent_time",
    "last_sent_time",
    "first_received_time",
    "last_received_time",
    "last_close_time",
)


def ticket_values(ticket_id: int) -> dict | None:
    """The values of payloads.TICKET_VALUE_KEYS, as stored now (in this transaction)."""
    with connection.cursor() as cursor:
        cursor.execute(_sql()["ticket"], [ticket_id])
        row = cursor.fetchone()
    if row is None:
        return None
    values = dict(zip(payloads.TICKET_VALUE_KEYS, row, strict=True))
    for key in _TICKET_TIMES:
        values[key] = _aware(values[key])
    return values


def endpoints_for(project_id: int, family: str) -> list[int]:
    """Ids of the project's enabled endpoints subscribed to 'email' or 'ticket' events (read once per transaction
    when there are some)."""
    state = _current(create=False)
    rows = state.endpoints.get(project_id) if state is not None else None
    if rows is None:
        with connection.cursor() as cursor:
            cursor.execute(_sql()["endpoints"], [project_id, True])
            rows = [(pk, _json(events)) for pk, events in cursor.fetchall()]
        if rows:
            state = _current()
            if state is not None:
                state.endpoints[project_id] = rows
    return [pk for pk, events in rows if family in events]


def record(endpoint_ids: list[int], event: str, ordering_key: str, body: str) -> None:
    """Write the deliveries of one event and wake their endpoints after the commit."""
    record_many(endpoint_ids, [(event, ordering_key, body)])


def record_many(endpoint_ids: list[int], items: list[tuple[str, str, str]]) -> None:
    """Write (event, ordering key, body) deliveries in this order for each endpoint, in one statement."""
    moment = connection.ops.adapt_datetimefield_value(clock.now())
    pending = WebhookDelivery.State.PENDING
    with connection.cursor() as cursor:
        cursor.executemany(
            _sql()["insert"],
            [
                (pk, event, ordering_key, body, pending, moment, moment)
                for event, ordering_key, body in items
                for pk in endpoint_ids
            ],
        )
    wake(endpoint_ids)


def _emit(project_id: int, event: str, ordering_key: str, build: Callable[[], dict | None]) -> None:
    ids = endpoints_for(project_id, event.split(".", 1)[0])
    if not ids:
        return
    payload = build()
    if payload is not None:
        record(ids, event, ordering_key, dumps(payload))


# Emails -------------------------------------------------------------------------------------------------------------


def _email_key(email) -> str:
    if email.ticket_id:
        return f"ticket:{email.ticket_id}"
    return f"thread:{email.thread_id}" if email.thread_id else ""


def _email_payload(email_id: int) -> dict | None:
    from postdesk.inbound.jwz import normalize_message_id

    sql = _sql()
    with connection.cursor() as cursor:
        cursor.execute(sql["email"], [email_id])
        row = cursor.fetchone()
        if row is None:
            return None
        values = dict(zip((*payloads.EMAIL_VALUE_KEYS, "project_id"), row, strict=True))
        reply_id = None
        key = normalize_message_id(values["in_reply_to"]) if values["direction"] == Direction.IN else None
        if key:
            cursor.execute(sql["message_email"], [values["project_id"], key])
            found = cursor.fetchone()
            reply_id = found[0] if found else None
    for name in ("to", "cc", "bcc"):
        values[name] = _json(values[name])
    for name in ("sent_at", "created_at", "date"):
        values[name] = _aware(values[name])
    return payloads.email_payload(values, reply_email_id=reply_id)


def email_received(email) -> None:
    """A customer's email was stored (delivery reports are not emails for this purpose)."""
    if email.direction != Direction.IN or email.kind != Kind.INBOUND:
        return
    _emit(email.project_id, EMAIL_RECEIVED, _email_key(email), lambda: _email_payload(email.pk))


def email_sent(email) -> None:
    """An agent's email was queued for sending (not automatic responses, disposition or mass email)."""
    if email.direction != Direction.OUT or email.kind != Kind.AGENT_REPLY:
        return
    _emit(email.project_id, EMAIL_SENT, _email_key(email), lambda: _email_payload(email.pk))


# Tickets ------------------------------------------------------------------------------------------------------------


def ticket_added(ticket) -> None:
    """A ticket was created (``ticket``: the new row as created, its project, type, owner and creator at hand)."""
    ids = endpoints_for(ticket.project_id, "ticket")
    if not ids:
        return
    values = payloads.ticket_values(ticket)
    record(
        ids,
        TICKET_ADD,
        f"ticket:{ticket.pk}",
        dumps({"action": "add", "ticket": payloads.ticket_object(values)}),
    )
    state = _current()
    if state is not None:
        state.added.add(ticket.pk)


def ticket_updated(ticket, changed: dict | Iterable[str]) -> None:
    """Only the changed attributes (vendor names), plus ticketId, ticketNo, projectId and projectName."""
    changed = changed if isinstance(changed, dict) else list(changed)
    if not changed:
        return
    ids = endpoints_for(ticket.project_id, "ticket")
    if not ids:
        return
    values = ticket_values(ticket.pk)
    if values is not None:
        _updated(ids, values, changed)


def _updated(ids: list[int], values: dict, changed: dict | list[str]) -> None:
    full = payloads.ticket_object(values)
    key = f"ticket:{values['id']}"
    state = _current()
    if state is not None and values["id"] in state.added:
        with connection.cursor() as cursor:
            cursor.execute(
                _sql()["rewrite"].format(ids=", ".join(["%s"] * len(ids))),
                [
                    dumps({"action": "add", "ticket": full}),
                    TICKET_ADD,
                    key,
                    WebhookDelivery.State.PENDING,
                    *ids,
                ],
            )
            if cursor.rowcount:
                return
    if isinstance(changed, dict):
        update = {name: payloads.plain_value(value) for name, value in changed.items()}
    else:
        unknown = [name for name in changed if name not in full]
        if unknown:
            raise ValueError(f"not ticket fields: {', '.join(unknown)}")
        update = {name: full[name] for name in changed}
    record(
        ids,
        TICKET_UPDATE,
        key,
        dumps({"action": "update", "ticket": {**payloads.ticket_identifiers(full), **update}}),
    )


_STATE_FIELDS = (("status", "status"), ("substatus", "substatus"), ("lastOpenTime", "last_open_time"))


def emails_joined(ticket, emails: Iterable) -> None:
    """Emails joined the ticket (assigned, threaded in, or sent from it): what that changed on the ticket. ``ticket``
    is the caller's object from before the change (its status fields are compared and then brought up to date)."""
    emails = list(emails)
    ids = endpoints_for(ticket.project_id, "ticket")
    if not ids or not emails:
        return
    values = ticket_values(ticket.pk)
    if values is None:
        return
    changed: list[str] = []
    received = {e.date for e in emails if e.direction == Direction.IN and e.kind == Kind.INBOUND}
    sent = {
        e.date
        for e in emails
        if e.direction == Direction.OUT and e.kind in (Kind.AGENT_REPLY, Kind.DISPOSITION)
    }
    if received:
        changed.append("receivedCount")
        changed += [
            f
            for f, c in (
                ("firstReceivedTime", "first_received_time"),
                ("lastReceivedTime", "last_received_time"),
            )
            if values[c] in received
        ]
    if sent:
        changed.append("sentCount")
        changed += [
            f
            for f, c in (("firstSentTime", "first_sent_time"), ("lastSentTime", "last_sent_time"))
            if values[c] in sent
        ]
    for name, attr in _STATE_FIELDS:
        if getattr(ticket, attr) != values[attr]:
            changed.append(name)
            setattr(ticket, attr, values[attr])
    if changed:
        _updated(ids, values, changed)


def ticket_deleted(ticket) -> None:
    """A ticket is about to be deleted (call it in the deleting transaction, before the delete). ``ticket``: the
    Ticket, or its vendor object (payloads.ticket_object). The payload carries the identifiers only."""
    tickets_deleted([ticket])


def tickets_deleted(tickets: Iterable) -> None:
    """Many tickets are about to be deleted: one endpoint query and one insert per project."""
    from postdesk.projects.models import Project

    by_project: dict[int | None, list[dict]] = {}
    keys: dict[str, int | None] = {}
    for t in tickets:
        if isinstance(t, dict):
            key = str(t["projectId"])
            if key not in keys:
                keys[key] = Project.objects.filter(key=key).values_list("id", flat=True).first()
            by_project.setdefault(keys[key], []).append(
                {"ticketId": t["ticketId"], "ticketNo": t["ticketNo"]}
            )
        else:
            by_project.setdefault(t.project_id, []).append({"ticketId": t.pk, "ticketNo": t.number})
    for project_id, items in by_project.items():
        ids = endpoints_for(project_id, "ticket") if project_id is not None else []
        if not ids:
            continue
        project = Project.objects.only("key", "name").get(pk=project_id)
        record_many(
            ids,
            [
                (
                    TICKET_DELETE,
                    f"ticket:{item['ticketId']}",
                    dumps(
                        {
                            "action": "delete",
                            "ticket": {**item, "projectId": project.key, "projectName": project.name},
                        }
                    ),
                )
                for item in items
            ],
        )
