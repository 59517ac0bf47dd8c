"""Automatic deletion and anonymisation: Project > Channels > E-mail > General settings, 'Automatic deletion of e-mails,
chats and related tickets' after N days (N >= 30). docs/retention.md explains the rules and guarantees.

For a project with the setting on and a moment `as_of`, cutoff = as_of - N days:
- an email is due when its date (receipt, or creation for outbound) is at or before the cutoff, and every ticket that
  governs it (its own ticket, and its thread's ticket) is closed with its last closure at or before the cutoff. Open
  tickets keep all their mail; outbound emails not yet handed to the relay (queued, sending) are kept;
- deleting an email removes it completely: the row, content, attachments, delivery events (tracking), its full-text
  entry, its Message-ID index rows, the IncomingMessage rows that produced it, its raw message once nothing else
  refers to it; campaign recipient rows lose their personal fields; threads left empty go; customer addresses go on
  the suppression list as hashes (reason 'erased');
- a ticket with no emails left (closed at or before the cutoff) is deleted; a record with no tickets left has its
  personal attributes anonymised;
- pre-aggregated statistics (reports.DailyEmailStats, ticket counters, campaign totals) are aggregates and stay.

The work is derived from the state, in batches of at most `batch_size` emails, one transaction each: a batch
re-reads its emails, their threads and tickets under the write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: SELECT ...
FOR UPDATE) and deletes only what is still due, so mail arriving for a ticket meanwhile keeps the ticket. A run that is
killed loses at most its current batch; running again finishes the work. Running twice does nothing the second time.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from django.db import IntegrityError, OperationalError, connection, models, transaction
from django.db.models import Exists, OuterRef, Q, Subquery

from postdesk.campaigns.models import CampaignRecipient, Suppression
from postdesk.core import clock
from postdesk.core.models import AuditEvent
from postdesk.core.services import audit
from postdesk.emails import search
from postdesk.emails.models import (
    Attachment,
    DeliveryEvent,
    Direction,
    Email,
    EmailContent,
    Kind,
    MessageIdIndex,
    RawMessage,
    Status,
    Thread,
)
from postdesk.emails.services import address_hash
from postdesk.inbound import jwz, spool
from postdesk.inbound.models import AutoResponseLog, IncomingMessage
from postdesk.integrations import events
from postdesk.integrations.models import WebhookDelivery
from postdesk.mailboxes.models import EmailAccount
from postdesk.projects.models import Project
from postdesk.records.models import Record, RecordField
from postdesk.retention.models import RetentionRun
from postdesk.tickets.models import Status as TicketStatus
from postdesk.tickets.models import Ticket

log = logging.getLogger(__name__)

MIN_DAYS = 30
BATCH = 1000
# What a run reports, in this order (the first five are the ones the issue asks for).
COUNT_KEYS = (
    "emails",
    "tickets",
    "records",
    "raw_messages",
    "attachments",
    "threads",
    "events",
    "incoming",
    "suppressed",
)
# SQLite: VACUUM at the end of a run when free pages are more than this share of the file (space goes back to the
# file system). Deleted content is zeroed either way (secure_delete), so this is about size, not erasure.
VACUUM_FREE_SHARE = 0.25
CHECKPOINT_ATTEMPTS = 10
PAUSE_BETWEEN_BATCHES = 0.1  # seconds, SQLite only (see _let_others_write)
IN_FLIGHT = (Status.QUEUED, Status.SENDING)  # outbound emails the sender may be working on


# The rules ---------------------------------------------------------------------------------------------------------


def cutoff_for(project, as_of: dt.datetime) -> dt.datetime | None:
    """The moment at or before which the project's mail is due, or None when automatic deletion is off."""
    days = project.auto_delete_days
    if days is None or days < MIN_DAYS:
        return None
    return as_of - dt.timedelta(days=days)


def _closed_by(prefix: str, cutoff) -> Q:
    """The ticket at `prefix` is closed and its last closure is at or before the cutoff (tickets closed before
    last_close_time was recorded count from their last update)."""
    return Q(**{f"{prefix}status": TicketStatus.CLOSED}) & (
        Q(**{f"{prefix}last_close_time__lte": cutoff})
        | Q(**{f"{prefix}last_close_time__isnull": True, f"{prefix}updated_at__lte": cutoff})
    )


def ticket_lets_go(ticket: Ticket | None, cutoff) -> bool:
    """The same rule over a loaded ticket (None: no ticket)."""
    if ticket is None:
        return True
    closed_at = ticket.last_close_time or ticket.updated_at
    return ticket.status == TicketStatus.CLOSED and closed_at is not None and closed_at <= cutoff


def due_emails(project, cutoff):
    """The project's emails due for deletion at this cutoff (a queryset)."""
    return (
        Email.objects.filter(project=project, date__lte=cutoff)
        .exclude(direction=Direction.OUT, status__in=IN_FLIGHT)
        .filter(Q(ticket__isnull=True) | _closed_by("ticket__", cutoff))
        .filter(
            Q(thread__isnull=True) | Q(thread__ticket__isnull=True) | _closed_by("thread__ticket__", cutoff)
        )
    )


def email_is_due(row: dict, tickets: dict, thread_tickets: dict, cutoff) -> bool:
    """The rule over rows read under the lock. A ticket that is not among the locked ones (the email was just put on
    another ticket) keeps the email: the next run looks again."""
    if row["date"] > cutoff:
        return False
    if row["direction"] == Direction.OUT and row["status"] in IN_FLIGHT:
        return False
    for ticket_id in (row["ticket_id"], thread_tickets.get(row["thread_id"])):
        if ticket_id is not None and (
            ticket_id not in tickets or not ticket_lets_go(tickets[ticket_id], cutoff)
        ):
            return False
    return True


# A run ---------------------------------------------------------------------------------------------------------------


@dataclass
class Result:
    as_of: dt.datetime
    dry_run: bool
    run_id: int | None = None
    counts: Counter = field(default_factory=Counter)
    projects: dict = field(default_factory=dict)  # key -> {"days", "cutoff", "counts"}
    maintenance: dict = field(default_factory=dict)

    def totals(self) -> dict:
        return {k: self.counts.get(k, 0) for k in COUNT_KEYS}


def run(
    as_of: dt.datetime | None = None,
    *,
    dry_run: bool = False,
    batch_size: int = BATCH,
    projects=None,
    vacuum: bool | None = None,
) -> Result:
    """Run automatic deletion as of this moment (default: now) for every project with the setting on (or those
    given). Dry run: count what would go and change nothing but the RetentionRun row that records it.
    vacuum: None decides by the free space (SQLite), True forces VACUUM (VACUUM FULL on PostgreSQL), False never."""
    as_of = as_of or clock.now()
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    batch_size = max(1, int(batch_size))
    if projects is None:
        projects = Project.objects.filter(auto_delete_days__gte=MIN_DAYS)
    chosen = [p for p in projects if cutoff_for(p, as_of) is not None]
    result = Result(as_of=as_of, dry_run=dry_run)
    record = RetentionRun.objects.create(as_of=as_of, dry_run=dry_run, started_at=clock.now())
    result.run_id = record.pk
    try:
        for project in chosen:
            cutoff = cutoff_for(project, as_of)
            entry = {"days": project.auto_delete_days, "cutoff": cutoff.isoformat(), "counts": Counter()}
            result.projects[project.key] = entry
            if dry_run:
                _tally(result, entry, plan(project, cutoff))
            else:
                _run_project(project, cutoff, batch_size, result, entry, record)
    except BaseException as exc:  # killed or failed: keep the counts of the batches that committed, and why
        _save(record, result, error=f"{type(exc).__name__}: {exc}"[:2000], in_batch=False)
        raise
    if not dry_run:
        result.maintenance = compact(deleted=any(result.totals().values()), vacuum=vacuum)
    record.finished_at = clock.now()
    _save(record, result, in_batch=False)
    if not dry_run:
        with transaction.atomic():
            for project in chosen:
                entry = result.projects[project.key]
                audit(
                    "retention.run",
                    project=project,
                    obj=record,
                    after={
                        "as_of": as_of.isoformat(),
                        "days": entry["days"],
                        "counts": _counts(entry["counts"]),
                    },
                )
            if not chosen:
                audit(
                    "retention.run", obj=record, after={"as_of": as_of.isoformat(), "counts": result.totals()}
                )
    return result


def _counts(counter) -> dict:
    return {k: counter.get(k, 0) for k in COUNT_KEYS}


def _save(
    record: RetentionRun, result: Result, *, pending=None, error: str = "", in_batch: bool = True
) -> None:
    """Store the run's counts, with a batch's `pending` (entry, counts) added. Saved inside the batch's transaction,
    they commit with the batch, so a run that is killed shows what it did."""
    entry_of_batch, batch_counts = pending or (None, {})
    values = {
        "counts": _counts(result.counts + Counter(batch_counts)),
        "details": {
            "projects": {
                key: {
                    "days": e["days"],
                    "cutoff": e["cutoff"],
                    "counts": _counts(e["counts"] + Counter(batch_counts if e is entry_of_batch else {})),
                }
                for key, e in result.projects.items()
            },
            "maintenance": result.maintenance,
        },
        "finished_at": record.finished_at,
    }
    if error:
        values["error"] = error
    try:
        RetentionRun.objects.filter(pk=record.pk).update(**values)
    except Exception:
        if in_batch:
            raise
        log.exception("could not save retention run %s", record.pk)


def _tally(result: Result, entry: dict, counts: dict) -> None:
    counts = {k: v for k, v in counts.items() if v}
    result.counts.update(counts)
    entry["counts"].update(counts)


def _batch(record: RetentionRun, result: Result, entry: dict, fn, *args) -> bool:
    """Run one batch, fn(*args) -> (counts, more), in its own transaction with the run's counts; they are added to
    the result once it commits. A deadlock (PostgreSQL), a busy database (SQLite) or a foreign key broken by a
    concurrent writer (mail committed meanwhile for a thread or ticket the batch deletes) rolls the batch back, and
    it runs again from the state as it is then. Returns `more`."""
    attempts = 1 if connection.in_atomic_block else 4
    for attempt in range(attempts):
        try:
            with transaction.atomic():
                counts, more = fn(*args)
                counts = {k: v for k, v in counts.items() if v}
                if counts:
                    _save(record, result, pending=(entry, counts))
            _tally(result, entry, counts)
            return more
        except (OperationalError, IntegrityError):
            if attempt == attempts - 1:
                raise
            log.warning("retention batch rolled back (lock conflict); trying again", exc_info=True)
            time.sleep(0.2 * (attempt + 1))
    return False


def _let_others_write() -> None:
    """SQLite has one writer at a time: a short pause between batches lets the listener's intake and the processing
    jobs in (their busy handlers poll), so a long run holds them up for one batch at most."""
    if connection.vendor == "sqlite" and not connection.in_atomic_block:
        time.sleep(PAUSE_BETWEEN_BATCHES)


def _run_project(project, cutoff, batch_size: int, result: Result, entry: dict, record: RetentionRun) -> None:
    after = None
    while True:
        candidates = _candidates(project, cutoff, after, batch_size)
        if not candidates:
            break
        after = candidates[-1]
        _batch(record, result, entry, _email_batch, project, cutoff, [pk for pk, _ in candidates])
        _let_others_write()
    for sweep in (_sweep_tickets, _sweep_threads, _sweep_incoming, _sweep_campaign_recipients, _sweep_logs):
        while _batch(record, result, entry, sweep, project, cutoff, batch_size):
            _let_others_write()


# Emails, threads, tickets and records, batch by batch ---------------------------------------------------------------


def _candidates(project, cutoff, after: tuple | None, limit: int) -> list[tuple]:
    """The next due emails as (id, date), oldest first, after the keyset position `after` (an earlier (id, date)).
    A plain read: the batch checks them again under the lock."""
    qs = due_emails(project, cutoff)
    if after is not None:
        pk, moment = after
        # date >= moment bounds the index range; the OR alone would make SQLite scan from the oldest email again
        qs = qs.filter(date__gte=moment).filter(Q(date__gt=moment) | Q(id__gt=pk))
    return list(qs.order_by("date", "id").values_list("id", "date")[:limit])


EMAIL_COLUMNS = (
    "id",
    "date",
    "direction",
    "kind",
    "status",
    "ticket_id",
    "thread_id",
    "raw_id",
    "subject",
    "from_name",
    "from_address",
    "reply_to",
    "to",
    "cc",
    "bcc",
    "message_id",
)


def _email_batch(project, cutoff, ids: list[int]) -> tuple[dict, bool]:
    """One transaction: lock the candidate emails, their threads and tickets; delete those still due, then the
    threads and tickets they leave empty and the records those tickets leave without tickets."""
    rows = list(Email.objects.select_for_update().filter(pk__in=ids, project=project).values(*EMAIL_COLUMNS))
    thread_tickets = dict(
        Thread.objects.select_for_update()
        .filter(pk__in={r["thread_id"] for r in rows if r["thread_id"]})
        .values_list("id", "ticket_id")
    )
    ticket_ids = {r["ticket_id"] for r in rows if r["ticket_id"]} | {t for t in thread_tickets.values() if t}
    tickets = {t.pk: t for t in Ticket.objects.select_for_update().filter(pk__in=ticket_ids)}
    due = [r for r in rows if email_is_due(r, tickets, thread_tickets, cutoff)]
    if not due:
        return {}, False
    counts = Counter(erase_emails(project, due))
    counts["threads"] += delete_empty_threads({r["thread_id"] for r in due})
    governing = {r["ticket_id"] for r in due} | {thread_tickets.get(r["thread_id"]) for r in due}
    counts.update(delete_tickets(project, {t for t in governing if t in tickets}))
    return counts, False


def erase_emails(project, rows: list[dict]) -> dict:
    """Delete these emails (rows as read under the lock) and everything that is only theirs. Call inside the batch's
    transaction."""
    ids = [r["id"] for r in rows]
    # 1. the full-text and address index entries
    unindex(rows, dict(EmailContent.objects.filter(email_id__in=ids).values_list("email_id", "text")))
    # 2. what the intake and threading kept about these messages
    incoming = list(IncomingMessage.objects.filter(email_id__in=ids).values_list("id", "raw_id", "dedup_key"))
    raw_ids = {r["raw_id"] for r in rows} | {raw for _, raw, _ in incoming}
    forget_dedup_keys(project, [key for _, _, key in incoming if key])
    n_incoming = delete_rows(IncomingMessage, [pk for pk, _, _ in incoming])[IncomingMessage._meta.label]
    MessageIdIndex.objects.filter(email_id__in=ids).delete()
    MessageIdIndex.objects.filter(
        project=project, email__isnull=True, message_id__in=_own_keys(rows)
    ).delete()
    # 3. campaign recipients keep their state (for the campaign's totals), not who they were
    recipients = list(CampaignRecipient.objects.filter(email_id__in=ids).values_list("id", flat=True))
    if recipients:
        CampaignRecipient.objects.filter(pk__in=recipients).update(
            address="", fields={}, record=None, email=None
        )
    # 4. the emails, with their content, attachments and delivery events (tracking)
    deleted = delete_rows(Email, ids)
    counts = {
        "emails": deleted[Email._meta.label],
        "attachments": deleted[Attachment._meta.label],
        "events": deleted[DeliveryEvent._meta.label],
        "incoming": n_incoming,
        "raw_messages": delete_unreferenced_raws(raw_ids),
    }
    # 5. erased addresses: only their hash stays, so mass mail does not add them again
    counts["suppressed"] = suppress(project, _customer_addresses(rows))
    _scrub_audit("email", ids)
    return counts


def unindex(rows: list[dict], texts: dict) -> None:
    """Remove the emails from the full-text index and (SQLite) the address index, with the values exactly as they
    were indexed: subject, text and "from_name from_address", as inbound processing and outbound.services index
    them (FTS5 contentless tables need the old values). On SQLite only rows an index holds: a 'delete' of a row
    FTS5 never indexed (mass email) would damage a contentless index."""
    documents = [
        (r["id"], r["subject"], texts.get(r["id"], ""), f"{r['from_name']} {r['from_address']}") for r in rows
    ]
    addresses = [(r["id"], r["from_name"], r["from_address"], r["to"], r["cc"]) for r in rows]
    if connection.vendor == "sqlite":
        held = _indexed(search.SQLITE_TABLE, [r["id"] for r in rows])
        documents = [d for d in documents if d[0] in held]
        held = _indexed(search.SQLITE_ADDRESS_TABLE, [r["id"] for r in rows])
        addresses = [a for a in addresses if a[0] in held]
    search.unindex(documents)
    search.unindex_addresses(addresses)


def _indexed(table: str, ids: list[int]) -> set[int]:
    """The ids an FTS5 table holds (its docsize shadow table has one row per indexed row)."""
    present = set()
    with connection.cursor() as cursor:
        for chunk in _chunks(ids, 500):
            marks = ", ".join(["%s"] * len(chunk))
            cursor.execute(f"SELECT id FROM {table}_docsize WHERE id IN ({marks})", chunk)
            present.update(row[0] for row in cursor.fetchall())
    return present


def forget_dedup_keys(project, keys: list[str]) -> None:
    """The intake spool (SQLite installations) remembers which messages it has seen, to store each once: forget the
    deleted ones (a message received again after its deletion is new). Done before the batch commits: should the
    batch roll back, the database's own unique (project, dedup_key) still keeps a copy from being stored twice."""
    if keys and spool.enabled():
        spool.forget_keys(project.pk, keys)


def _own_keys(rows: list[dict]) -> list[str]:
    """The messages' own Message-IDs as the thread index holds them."""
    keys = {jwz.normalize_message_id(r["message_id"]) for r in rows if r["message_id"]}
    return sorted(k[:998] for k in keys if k)


def delete_unreferenced_raws(raw_ids) -> int:
    """Raw messages no email and no incoming message refers to any more (copies for other projects share one)."""
    raw_ids = [r for r in set(raw_ids) if r]
    if not raw_ids:
        return 0
    unreferenced = (
        RawMessage.objects.filter(pk__in=raw_ids)
        .exclude(Exists(Email.objects.filter(raw_id=OuterRef("pk"))))
        .exclude(Exists(IncomingMessage.objects.filter(raw_id=OuterRef("pk"))))
        .values_list("id", flat=True)
    )
    return delete_rows(RawMessage, list(unreferenced))[RawMessage._meta.label]


def delete_empty_threads(thread_ids) -> int:
    """Threads left without emails go (with their Message-ID index rows), and so do the empty threads that were
    merged into them; a thread that keeps emails takes the subject of its first remaining email."""
    thread_ids = {t for t in thread_ids if t}
    if not thread_ids:
        return 0
    has_emails = Exists(Email.objects.filter(thread_id=OuterRef("pk")))
    empty = set(Thread.objects.filter(pk__in=thread_ids).exclude(has_emails).values_list("id", flat=True))
    frontier = set(empty)
    while frontier:  # merged-away threads hold no emails; they go with the thread they were merged into
        merged = Thread.objects.filter(merged_into_id__in=frontier).exclude(has_emails)
        frontier = set(merged.values_list("id", flat=True)) - empty
        empty |= frontier
    removed = delete_rows(Thread, empty)[Thread._meta.label]
    first = Email.objects.filter(thread_id=OuterRef("pk")).order_by("date", "id").values("subject")[:1]
    kept = Thread.objects.filter(pk__in=thread_ids - empty).annotate(first=Subquery(first))
    for thread_id, subject, first_subject in kept.values_list("id", "subject", "first"):
        base = jwz.base_subject(first_subject or "")[:1000]
        if base != subject:
            Thread.objects.filter(pk=thread_id).update(subject=base)
    return removed


def delete_tickets(project, ticket_ids) -> dict:
    """Delete those of these tickets (locked by the caller, closed long enough) that have no emails left, then
    anonymise the records that have no tickets left."""
    ticket_ids = [t for t in set(ticket_ids) if t]
    if not ticket_ids:
        return {}
    doomed = list(
        Ticket.objects.filter(pk__in=ticket_ids, project=project)
        .exclude(Exists(Email.objects.filter(ticket_id=OuterRef("pk"))))
        .only("id", "number", "project_id", "record_id")
    )
    if not doomed:
        return {}
    events.tickets_deleted(doomed)  # the webhook rows are written in this transaction, before the tickets go
    gone = [(t.pk, t.record_id) for t in doomed]
    delete_rows(Ticket, [pk for pk, _ in gone])
    _scrub_audit("ticket", [pk for pk, _ in gone])
    records, suppressed = anonymise_records(project, {rec for _, rec in gone if rec})
    return {"tickets": len(gone), "records": records, "suppressed": suppressed}


def anonymise_records(project, record_ids) -> tuple[int, int]:
    """Records with no tickets left: name, email, phone and every attribute marked as personal data are cleared.
    Returns (records anonymised, addresses newly suppressed)."""
    if not record_ids:
        return 0, 0
    personal = set(
        RecordField.objects.filter(project=project, personal_data=True).values_list("name", flat=True)
    )
    records = list(
        Record.objects.select_for_update()
        .filter(pk__in=record_ids, project=project, anonymised_at__isnull=True)
        .exclude(Exists(Ticket.objects.filter(record_id=OuterRef("pk"))))
    )
    moment = clock.now()
    addresses = []
    for record in records:
        addresses.append(record.email)
        record.name = record.email = record.phone = ""
        record.data = {k: v for k, v in (record.data or {}).items() if k not in personal}
        record.anonymised_at = moment
        record.save(update_fields=["name", "email", "phone", "data", "anonymised_at"])
    _scrub_audit("record", [r.pk for r in records])
    return len(records), suppress(project, addresses)


def _bare(address: str) -> str:
    """Lower-cased, without a +tag (VERP return paths, subaddresses)."""
    local, at, domain = (address or "").strip().lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}" if at else ""


def _customer_addresses(rows: list[dict]) -> list[str]:
    """The customers' addresses in these emails: every sender and recipient but our own accounts (delivery reports
    come from mail systems, not customers)."""
    found = []
    for r in rows:
        if r["kind"] != Kind.DELIVERY_REPORT:
            found += [r["from_address"], r["reply_to"], *(r["to"] or []), *(r["cc"] or []), *(r["bcc"] or [])]
    own = {_bare(a) for a in EmailAccount.objects.values_list("address", flat=True)}
    return [a for a in found if isinstance(a, str) and "@" in a and _bare(a) not in own]


def suppress(project, addresses) -> int:
    """Put erased addresses on the project's suppression list (hash only); returns how many were new."""
    hashes = {address_hash(a) for a in addresses if a and "@" in a}
    if not hashes:
        return 0
    known = set()
    for chunk in _chunks(sorted(hashes), 500):
        existing = Suppression.objects.filter(project=project, address_hash__in=chunk)
        known.update(existing.values_list("address_hash", flat=True))
    new = sorted(hashes - known)
    moment = clock.now()
    Suppression.objects.bulk_create(
        [
            Suppression(project=project, address_hash=h, reason=Suppression.Reason.ERASED, created_at=moment)
            for h in new
        ],
        ignore_conflicts=True,
    )
    return len(new)


def _scrub_audit(object_type: str, ids) -> None:
    """Audit events about erased objects keep who did what when, not the values (a ticket's title is usually the
    customer's subject; a record's creation names the customer)."""
    for chunk in _chunks([str(i) for i in ids], 500):
        AuditEvent.objects.filter(object_type=object_type, object_id__in=chunk).filter(
            Q(before__isnull=False) | Q(after__isnull=False)
        ).update(before=None, after=None)


def delete_rows(model, ids) -> Counter:
    """Delete these rows of `model` and what depends on them, following each relation's on_delete (CASCADE: the
    dependent rows go, recursively; SET_NULL: the reference is cleared), in plain SQL by id. The ORM's delete() does
    the same but loads every row first; this is what keeps a batch of a thousand emails cheap. Any other on_delete
    (PROTECT, ...) is left to the ORM, which enforces it. Returns the deleted rows per model label."""
    ids = sorted({i for i in ids if i is not None})
    done: Counter = Counter()
    if not ids:
        return done
    relations = _reverse_relations(model)
    if any(r.on_delete not in (models.CASCADE, models.SET_NULL, models.DO_NOTHING) for r in relations):
        for chunk in _chunks(ids, 500):
            done.update(model._base_manager.filter(pk__in=chunk).delete()[1])
        return done
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for relation in relations:
            related = relation.related_model
            table, column, related_pk = (
                quote(related._meta.db_table),
                quote(relation.field.column),
                quote(related._meta.pk.column),
            )
            for chunk in _chunks(ids, 500):
                marks = ", ".join(["%s"] * len(chunk))
                if relation.on_delete is models.SET_NULL:
                    # select first: SQLite 3.40 scans the whole table for "UPDATE t SET c = NULL WHERE c IN (...)"
                    cursor.execute(f"SELECT {related_pk} FROM {table} WHERE {column} IN ({marks})", chunk)
                    for part in _chunks([row[0] for row in cursor.fetchall()], 500):
                        cursor.execute(
                            f"UPDATE {table} SET {column} = NULL WHERE {related_pk} IN ({', '.join(['%s'] * len(part))})",
                            part,
                        )
                elif relation.on_delete is models.CASCADE and _reverse_relations(related):
                    cursor.execute(f"SELECT {related_pk} FROM {table} WHERE {column} IN ({marks})", chunk)
                    done.update(delete_rows(related, [row[0] for row in cursor.fetchall()]))
                elif relation.on_delete is models.CASCADE:
                    cursor.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", chunk)
                    done[related._meta.label] += cursor.rowcount
        table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
        for chunk in _chunks(ids, 500):
            cursor.execute(f"DELETE FROM {table} WHERE {pk} IN ({', '.join(['%s'] * len(chunk))})", chunk)
            done[model._meta.label] += cursor.rowcount
    return done


def _reverse_relations(model) -> list:
    """Every foreign key (and one-to-one) pointing at the model, related_name='+' ones included."""
    return [
        f
        for f in model._meta.get_fields(include_hidden=True)
        if f.auto_created and not f.concrete and (f.one_to_many or f.one_to_one)
    ]


# Sweeps: what email batches leave behind; each returns True while there is more to do --------------------------------


def _sweep_tickets(project, cutoff, limit) -> tuple[dict, bool]:
    """Tickets closed long enough that have no emails at all (made without mail, or emptied before)."""
    ids = list(
        Ticket.objects.select_for_update()
        .filter(Q(project=project) & _closed_by("", cutoff))
        .exclude(Exists(Email.objects.filter(ticket_id=OuterRef("pk"))))
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )
    counts = delete_tickets(project, ids)
    return counts, len(ids) == limit and counts.get("tickets", 0) > 0


def _sweep_threads(project, cutoff, limit) -> tuple[dict, bool]:
    """Empty threads older than the cutoff (merged into another thread, or emptied before): their subject is the
    first message's."""
    ids = list(
        Thread.objects.select_for_update()
        .filter(project=project, created_at__lte=cutoff)
        .exclude(Exists(Email.objects.filter(thread_id=OuterRef("pk"))))
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )
    removed = delete_empty_threads(ids)
    return {"threads": removed}, len(ids) == limit and removed > 0


def _sweep_incoming(project, cutoff, limit) -> tuple[dict, bool]:
    """Incoming messages older than the cutoff that never became an email (processing failed for good), with their
    raw bytes. Pending ones are left to processing."""
    rows = list(
        IncomingMessage.objects.select_for_update()
        .filter(
            project=project, received_at__lte=cutoff, email__isnull=True, state=IncomingMessage.State.FAILED
        )
        .order_by("id")
        .values_list("id", "raw_id", "dedup_key")[:limit]
    )
    forget_dedup_keys(project, [key for _, _, key in rows if key])
    n = delete_rows(IncomingMessage, [pk for pk, _, _ in rows])[IncomingMessage._meta.label]
    raws = delete_unreferenced_raws({raw for _, raw, _ in rows})
    return {"incoming": n, "raw_messages": raws}, len(rows) == limit and n > 0


def _sweep_campaign_recipients(project, cutoff, limit) -> tuple[dict, bool]:
    """Recipients of finished campaigns older than the cutoff that never got an email (skipped as suppressed, or
    failed before sending): their address and fields go; the address stays as a hash on the suppression list."""
    rows = list(
        CampaignRecipient.objects.select_for_update(of=("self",))
        .filter(
            campaign__project=project,
            campaign__created_at__lte=cutoff,
            campaign__status__in=["done", "cancelled"],
            email__isnull=True,
        )
        .exclude(address="")
        .order_by("id")
        .values_list("id", "address")[:limit]
    )
    if not rows:
        return {}, False
    CampaignRecipient.objects.filter(pk__in=[pk for pk, _ in rows]).update(address="", fields={}, record=None)
    return {"suppressed": suppress(project, [a for _, a in rows])}, len(rows) == limit


def _sweep_logs(project, cutoff, limit) -> tuple[dict, bool]:
    """Automatic-response log rows (the loop guard looks back one day) and finished webhook deliveries (their
    payloads carry the emails) older than the cutoff."""
    AutoResponseLog.objects.filter(project=project, at__lte=cutoff).delete()
    WebhookDelivery.objects.filter(endpoint__project=project, created_at__lte=cutoff).exclude(
        state=WebhookDelivery.State.PENDING
    ).delete()
    return {}, False


# Dry run -------------------------------------------------------------------------------------------------------------


def plan(project, cutoff) -> dict:
    """What a run would delete in this project at this cutoff, counted with the same rules; nothing changes.
    (New suppression entries are not counted.)"""
    due = due_emails(project, cutoff)
    due_ids = due.values("pk")
    kept = Email.objects.exclude(pk__in=due_ids)
    doomed = (
        Ticket.objects.filter(Q(project=project) & _closed_by("", cutoff))
        .exclude(Exists(kept.filter(ticket_id=OuterRef("pk"))))
        .values("pk")
    )
    records = (
        Record.objects.filter(project=project, anonymised_at__isnull=True)
        .filter(Exists(Ticket.objects.filter(record_id=OuterRef("pk"))))
        .exclude(Exists(Ticket.objects.filter(record_id=OuterRef("pk")).exclude(pk__in=doomed)))
    )
    threads = (
        Thread.objects.filter(project=project)
        .filter(Q(created_at__lte=cutoff) | Exists(due.filter(thread_id=OuterRef("pk"))))
        .exclude(Exists(kept.filter(thread_id=OuterRef("pk"))))
    )
    failed = IncomingMessage.objects.filter(
        project=project, received_at__lte=cutoff, email__isnull=True, state=IncomingMessage.State.FAILED
    )
    incoming = IncomingMessage.objects.filter(Q(email_id__in=due_ids) | Q(pk__in=failed.values("pk")))
    raws = (
        RawMessage.objects.filter(
            Q(pk__in=due.filter(raw_id__isnull=False).values("raw_id"))
            | Q(pk__in=incoming.filter(raw_id__isnull=False).values("raw_id"))
        )
        .exclude(Exists(kept.filter(raw_id=OuterRef("pk"))))
        .exclude(
            Exists(
                IncomingMessage.objects.filter(raw_id=OuterRef("pk")).exclude(pk__in=incoming.values("pk"))
            )
        )
    )
    return {
        "emails": due.count(),
        "tickets": doomed.count(),
        "records": records.count(),
        "raw_messages": raws.count(),
        "attachments": Attachment.objects.filter(email_id__in=due_ids).count(),
        "threads": threads.count(),
        "events": DeliveryEvent.objects.filter(email_id__in=due_ids).count(),
        "incoming": incoming.count(),
    }


# After a run ---------------------------------------------------------------------------------------------------------


def compact(*, deleted: bool = True, vacuum: bool | None = None) -> dict:
    """Make deleted content physically gone.

    SQLite (secure_delete=ON zeroes freed content): merge the full-text index so that deleted terms leave it, VACUUM
    when much of the file is free (vacuum=None), always (True) or never (False), then checkpoint and truncate the
    write-ahead log, which still holds old page images (after every run, so that a checkpoint readers kept busy is
    done by the next one). PostgreSQL: VACUUM (ANALYZE) the touched tables, VACUUM FULL when asked.
    Runs outside a transaction only. Returns what was done, with timings."""
    if connection.in_atomic_block:
        return {"skipped": "inside a transaction"}
    work = deleted or bool(vacuum)
    info: dict = {}
    if work:
        started = time.monotonic()
        search.optimize()
        if connection.vendor == "sqlite":  # the address and sender indexes are FTS5 tables too
            with connection.cursor() as cursor:
                for table in (search.SQLITE_ADDRESS_TABLE, search.SENDER_TRGM):
                    cursor.execute(f"INSERT INTO {table}({table}) VALUES ('optimize')")
        info["fts_optimize_seconds"] = round(time.monotonic() - started, 3)
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA page_count")
            pages = cursor.fetchone()[0]
            cursor.execute("PRAGMA freelist_count")
            free = cursor.fetchone()[0]
            info.update(pages=pages, free_pages=free)
            if work and (vacuum or (vacuum is None and pages and free / pages > VACUUM_FREE_SHARE)):
                started = time.monotonic()
                cursor.execute("VACUUM")
                info["vacuum_seconds"] = round(time.monotonic() - started, 3)
            info["checkpoint"] = _checkpoint(cursor)
            if (
                spool.enabled() and spool.path().exists()
            ):  # every message passes through the spool on its way in
                info["spool_checkpoint"] = _checkpoint(spool.connect().cursor())
        elif work:
            started = time.monotonic()
            option = "FULL, ANALYZE" if vacuum else "ANALYZE"
            for table in TOUCHED_TABLES:
                cursor.execute(f"VACUUM ({option}) {connection.ops.quote_name(table._meta.db_table)}")
            info["vacuum_seconds"] = round(time.monotonic() - started, 3)
            info["vacuum"] = option
    return info


TOUCHED_TABLES = (
    Email,
    EmailContent,
    Attachment,
    DeliveryEvent,
    RawMessage,
    Thread,
    MessageIdIndex,
    IncomingMessage,
    Ticket,
    Record,
    CampaignRecipient,
    AuditEvent,
    AutoResponseLog,
    WebhookDelivery,
)


def _checkpoint(cursor) -> str:
    """PRAGMA wal_checkpoint(TRUNCATE): copy every page back into the database file and truncate the log. It waits
    for the readers of other connections to move on; try a few times."""
    for attempt in range(CHECKPOINT_ATTEMPTS):
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        busy, _, _ = cursor.fetchone()
        if not busy:
            return "truncated"
        time.sleep(0.2 * (attempt + 1))
    log.warning("the write-ahead log could not be truncated (readers kept it busy); the next run tries again")
    return "busy"


def _chunks(items, size: int):
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start : start + size]
