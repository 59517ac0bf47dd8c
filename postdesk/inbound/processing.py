"""Processing of stored inbound messages, in the worker.

``analyse`` is a pure function over the raw bytes and the project's settings (MIME parsing, delivery-report
recognition, threading keys, language). ``process`` claims a batch of IncomingMessage rows, analyses them outside any
transaction, then writes the emails, threads, queue routing, search index, report events and automatic responses in
one short transaction. A message that fails is marked failed (kept raw, retried by recovery) and never holds up the
others."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field

from django.db import connection, transaction

from postdesk.core import clock
from postdesk.core.sqlbulk import insert, insert_objects
from postdesk.emails import search, threads
from postdesk.emails.models import Attachment, Direction, Email, EmailContent, Kind, Status
from postdesk.inbound import jwz, rules
from postdesk.inbound.mime import ParsedMessage, first_line, parse_message
from postdesk.inbound.models import IncomingMessage
from postdesk.inbound.reports import Report, detect_report
from postdesk.integrations import events as webhook_events

log = logging.getLogger(__name__)
BATCH = 64


@dataclass
class Analysis:
    parsed: ParsedMessage
    report: Report | None
    keys: list[str]  # thread keys: own Message-ID first
    ticket_numbers: list[str]
    language: str | None
    headers: dict[str, str] = field(default_factory=dict)


def fallback_message_id(incoming_id: int) -> str:
    """The thread key of a message without a Message-ID of its own."""
    return f"<intake-{incoming_id}@postdesk.invalid>"


def analyse(raw: bytes, *, detect_language: bool, fallback_id: str) -> Analysis:
    parsed = parse_message(raw)
    report = None
    if parsed.message is not None:
        try:
            report = detect_report(parsed.message, raw)
        except Exception:  # a report parser bug must not lose the message
            log.exception("report detection failed")
    keys = jwz.thread_keys(parsed.message_id, parsed.in_reply_to, parsed.references)
    if not parsed.message_id or not keys or keys[0] != jwz.normalize_message_id(parsed.message_id):
        keys = [fallback_id, *keys]
    language = None
    if detect_language and report is None and not parsed.parse_error:
        from postdesk.inbound.language import detect_message_language

        language = detect_message_language(parsed.text or "")
    numbers = jwz.find_ticket_numbers(parsed.subject or "")
    return Analysis(parsed, report, keys, numbers, language, parsed.headers)


@dataclass
class ProjectContext:
    project: object
    queues_by_language: dict
    default_queue: object
    own_addresses: frozenset


class SharedContexts(dict):
    """Project contexts (settings, queues, own addresses) shared by the batches of one job, for at most `ttl`
    seconds: a settings change reaches the next batch within that time, and a burst of small batches does not
    read the same settings each time (three queries a batch)."""

    def __init__(self, ttl: float = 1.0):
        super().__init__()
        self.ttl, self.since = ttl, time.monotonic()

    def fresh(self) -> SharedContexts:
        if time.monotonic() - self.since > self.ttl:
            self.clear()
            self.since = time.monotonic()
        return self


def _project_context(project_id: int, cache: dict) -> ProjectContext:
    if project_id not in cache:
        from postdesk.mailboxes.models import EmailAccount
        from postdesk.projects.models import Project

        project = Project.objects.select_related("auto_response_template").get(pk=project_id)
        queues = list(project.queues.all())
        own = frozenset(a.lower() for a in EmailAccount.objects.values_list("address", flat=True))
        cache[project_id] = ProjectContext(
            project=project,
            queues_by_language={q.language: q for q in queues if not q.is_default},
            default_queue=next(q for q in queues if q.is_default),
            own_addresses=own,
        )
    return cache[project_id]


def claim(ids: list[int]) -> list[IncomingMessage]:
    rows = list(
        IncomingMessage.objects.filter(pk__in=ids, state=IncomingMessage.State.PENDING)
        .select_related("raw")
        .order_by("id")
    )
    return rows


def process(ids: list[int]) -> int:
    """Process these IncomingMessage ids (those still pending). Safe to run twice: done rows are skipped.

    The pure analysis runs first, outside any transaction. The writes for the whole batch then go in one transaction
    with bulk inserts; if that fails, each message is retried alone in its own savepoint so that one bad message is
    marked failed without holding up the others."""
    rows = claim(ids)
    if not rows:
        return 0
    contexts: dict[int, ProjectContext] = {}
    analysed = []
    for row in rows:
        ctx = _project_context(row.project_id, contexts)
        raw = bytes(row.raw.data) if row.raw is not None else b""
        try:
            analysis = analyse(
                raw,
                detect_language=ctx.project.language_detection,
                fallback_id=fallback_message_id(row.pk),
            )
        except Exception as exc:  # parse_message never raises by contract; belt and braces
            log.exception("analysis of incoming %s failed", row.pk)
            analysis = exc
        analysed.append((row, raw, analysis))
    with _relaxed_sync(), transaction.atomic():
        # row locks (PostgreSQL): a second worker processing the same rows at once (a sweep, a recovery) waits here,
        # then sees them done; without them both wrote an email (SQLite serialises writers anyway)
        still = set(
            IncomingMessage.objects.select_for_update()
            .filter(pk__in=[r.pk for r in rows], state=IncomingMessage.State.PENDING)
            .order_by("id")
            .values_list("id", flat=True)
        )
        return _write_analysed([item for item in analysed if item[0].pk in still], contexts)


def _write_analysed(todo: list, contexts: dict) -> int:
    """Write (row, raw, Analysis or the exception analysis raised) items (inside a transaction): all in one go, or
    if that fails each alone in a savepoint; a message that fails is marked failed (kept raw, shown to supervisors)
    without holding up the others. Returns how many were written."""
    good = [item for item in todo if not isinstance(item[2], Exception)]
    for row, _, exc in todo:
        if isinstance(exc, Exception):
            _mark_failed(row, exc)
    try:
        with transaction.atomic():
            write_batch(good, contexts)
        return len(good)
    except Exception:
        log.exception("batch write failed; writing messages one by one")
    done = 0
    for item in good:
        try:
            with transaction.atomic():
                write_batch([item], contexts)
            done += 1
        except Exception as exc:
            log.exception("incoming message %s could not be processed", item[0].pk)
            _mark_failed(item[0], exc)
    return done


def _mark_failed(row: IncomingMessage, exc: Exception) -> None:
    IncomingMessage.objects.filter(pk=row.pk).update(
        state=IncomingMessage.State.FAILED,
        attempts=row.attempts + 1,
        error=f"{type(exc).__name__}: {exc}"[:2000],
    )


class _relaxed_sync:
    """Processing writes only derived data (the raw message and its IncomingMessage row stay pending until the same
    transaction commits), so on SQLite its commits need not wait for an fsync: after a power loss the last batch is
    simply processed again. The intake's commits keep synchronous=FULL."""

    def __enter__(self):
        from django.db import connection

        self.sqlite = connection.vendor == "sqlite" and not connection.in_atomic_block
        if self.sqlite:
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA synchronous=NORMAL")
        return self

    def __exit__(self, *exc):
        from django.conf import settings
        from django.db import connection

        if self.sqlite and connection.connection is not None:
            with connection.cursor() as cursor:
                cursor.execute(f"PRAGMA synchronous={settings.CONFIG.sqlite_synchronous}")


def without_nul(value):
    """Text for the database: PostgreSQL stores no NUL characters in text or JSON (mail bodies and bounce
    diagnostics sometimes carry them). The raw message keeps every byte."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, dict):
        return {k: without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_nul(v) for v in value]
    return value


def _status_of(a: Analysis) -> tuple[str, str]:
    if a.parsed.parse_error:
        return Status.UNPARSEABLE, Kind.INBOUND
    if a.report is not None:
        return Status.REPORT, Kind.DELIVERY_REPORT
    return Status.NEW, Kind.INBOUND


def _new_email(row: IncomingMessage, raw: bytes, a: Analysis, project, status: str, kind: str) -> Email:
    p = a.parsed
    sender = p.from_.address if p.from_ else ""
    return Email(
        project=project,
        account_id=row.account_id,
        direction=Direction.IN,
        kind=kind,
        status=status,
        date=row.received_at,
        created_at=clock.now(),
        mail_from=row.mail_from,
        from_address=sender[:320],
        from_name=(p.from_.name if p.from_ else "")[:500],
        to=[x.address for x in p.to][:100],
        cc=[x.address for x in p.cc][:100],
        reply_to=(p.reply_to[0].address if p.reply_to else "")[:998],
        subject=(p.subject or "")[:1000],
        first_line=first_line(without_nul(p.text or ""), 200),
        size=len(raw),
        has_attachments=any(not att.inline for att in p.attachments),
        language=(a.language or "") if status == Status.NEW else "",
        message_id=(p.message_id or "")[:998],
        in_reply_to=(p.in_reply_to or "")[:998],
        references=(p.references or "")[:20000],
        raw_id=row.raw_id,
        report=without_nul(a.report.as_dict()) if a.report is not None else None,
        parse_error=p.parse_error or "",
        has_remote_images=p.has_remote_images,
    )


def write_batch(items: list, contexts: dict) -> list[Email]:
    """Write analysed messages of one or more projects: threads, emails, content, attachments, message-id index and
    search index in bulk; then the per-message follow-ups (ticket joins, report events, automatic responses)."""
    from postdesk.emails.models import MessageIdIndex, Thread

    emails: list[Email] = []
    by_project: dict[int, list] = {}
    for item in items:
        by_project.setdefault(item[0].project_id, []).append(item)
    for project_id, group in by_project.items():
        ctx = contexts[project_id]
        project = ctx.project
        keys = {k[: threads.MAX_KEY_LENGTH] for _, _, a in group for k in a.keys}
        index: dict[str, object] = _indexed_threads(project.pk, keys)
        known_keys = set(index)  # threads.merge below re-points keys, never adds any
        thread_ids = set(index.values())
        known = {
            t.pk: t for t in Thread.objects.filter(pk__in=thread_ids).select_related("ticket__record")
        } if thread_ids else {}
        new_threads: list[Thread] = []
        redirect: dict[
            int, Thread
        ] = {}  # id() of a thread merged away in this batch -> the thread it went into

        plans = []
        for row, raw, a in group:
            status, kind = _status_of(a)
            p = a.parsed
            sender = p.from_.address if p.from_ else ""
            row_keys = [k[: threads.MAX_KEY_LENGTH] for k in a.keys]
            refs = []
            for k in row_keys:
                if k in index:
                    ref = index[k]
                    ref = known.get(ref, ref) if isinstance(ref, int) else ref
                    refs.append(ref)
            candidates = []  # Thread objects: saved ones, and new ones of this batch (no pk yet)
            for ref in refs:
                ref = _follow(ref, redirect)
                if ref not in candidates:
                    candidates.append(ref)
            thread = None
            if candidates:
                saved = sorted((c for c in candidates if c.pk), key=lambda t: (t.created_at, t.pk))
                thread = saved[0] if saved else candidates[0]
                for other in candidates:
                    if other is thread:
                        continue
                    if other.pk:
                        threads.merge(other, into=thread)
                        if thread.ticket_id is None and other.ticket_id is not None:
                            thread.ticket_id = other.ticket_id
                    redirect[id(other)] = thread
                ticket = thread.ticket if thread.ticket_id else None
                if ticket is not None and not _takes_part(ticket, sender):
                    thread, row_keys = None, row_keys[:1]
            if thread is None:
                thread = Thread(
                    project=project,
                    subject=jwz.base_subject(p.subject or "")[:1000],
                    created_at=row.received_at,
                    last_message_at=row.received_at,
                )
                new_threads.append(thread)
                created = True
            else:
                created = False
            for k in row_keys:
                index.setdefault(k, thread)
            email = _new_email(row, raw, a, project, status, kind)
            plans.append([row, a, email, thread, row_keys, created])

        # new threads first (ids needed), then emails
        new_threads = [t for t in new_threads if id(t) not in redirect]
        insert_objects(Thread, new_threads)
        ticket_by_thread = {}
        for plan in plans:
            plan[3] = _follow(plan[3], redirect)
        for plan in plans:
            row, a, email, thread, row_keys, created = plan
            email.thread_id = thread.pk
            ticket = thread.ticket if thread.ticket_id else None
            if email.status == Status.NEW:
                if ticket is None and a.ticket_numbers:
                    ticket = ticket_by_thread.get(thread.pk) or _ticket_from_subject(
                        project, a.ticket_numbers, email.from_address
                    )
                    if ticket is not None:
                        ticket_by_thread[thread.pk] = ticket
                        if thread.ticket_id is None:
                            thread.ticket = ticket
                            Thread.objects.filter(pk=thread.pk).update(ticket=ticket)
                        plan[5] = False
                queue = ctx.default_queue
                if project.language_detection and project.email_queue and a.language:
                    queue = ctx.queues_by_language.get(a.language, ctx.default_queue)
                email.queue = queue
                email.ticket = ticket
        batch_emails = [plan[2] for plan in plans]
        insert_objects(Email, batch_emails)
        insert(EmailContent, ["email_id", "text", "html"],
               [(plan[2].pk, without_nul(plan[1].parsed.text or ""), without_nul(plan[1].parsed.html or ""))
                for plan in plans], returning=False)
        attachments = [
            Attachment(
                email=plan[2],
                filename=att.filename[:255],
                original_filename=att.original_filename[:1000],
                content_type=att.content_type[:255],
                size=att.size,
                content_id=(att.content_id or "")[:998],
                inline=att.inline,
                data=att.data,
            )
            for plan in plans
            for att in plan[1].parsed.attachments
        ]
        insert_objects(Attachment, attachments)
        index_rows = []
        for plan in plans:
            email, thread, row_keys = plan[2], plan[3], plan[4]
            for i, k in enumerate(row_keys):
                if k not in known_keys:
                    known_keys.add(k)
                    index_rows.append((project.pk, k, thread.pk, email.pk if i == 0 else None))
        insert(MessageIdIndex, ["project_id", "message_id", "thread_id", "email_id"], index_rows, returning=False,
               ignore_conflicts=True)
        search.index(
            [
                (
                    plan[2].pk,
                    project.pk,
                    plan[2].subject,
                    plan[1].parsed.text or "",
                    f"{plan[2].from_name} {plan[2].from_address}",
                )
                for plan in plans
            ]
        )
        search.index_addresses(
            [(e.pk, e.from_name, e.from_address, e.to, e.cc) for e in (plan[2] for plan in plans)]
        )
        latest: dict[int, object] = {}
        for plan in plans:
            thread = plan[3]
            if not plan[5] and (thread.pk not in latest or plan[2].date > latest[thread.pk]):
                latest[thread.pk] = plan[2].date
        for thread_id, moment in latest.items():
            Thread.objects.filter(pk=thread_id, last_message_at__lt=moment).update(last_message_at=moment)
        with connection.cursor() as cursor:
            cursor.executemany(
                f"UPDATE {IncomingMessage._meta.db_table} SET state = %s, email_id = %s, attempts = attempts + 1 "
                "WHERE id = %s",
                [(IncomingMessage.State.DONE, plan[2].pk, plan[0].pk) for plan in plans],
            )

        for row, a, email, _, _, created in plans:
            webhook_events.email_received(email)
            if email.ticket_id is not None:
                from postdesk.tickets.services import email_joined

                email_joined(email.ticket, email)
            if a.report is not None:
                from postdesk.emails.services import record_report

                record_report(email, a.report, row.rcpt_to)
            elif email.status == Status.NEW and created and project.auto_response_template_id:
                _maybe_auto_respond(email, a, ctx, row)
            emails.append(email)
    return emails


def _indexed_threads(project_id: int, keys) -> dict[str, int]:
    """Message-ID index: key -> thread id, for the keys already known in the project (plain SQL: per batch)."""
    from postdesk.emails.models import MessageIdIndex

    found: dict[str, int] = {}
    with connection.cursor() as cursor:
        for chunk in _chunks(sorted(keys), 500):
            marks = ", ".join(["%s"] * len(chunk))
            cursor.execute(f"SELECT message_id, thread_id FROM {MessageIdIndex._meta.db_table} "
                           f"WHERE project_id = %s AND message_id IN ({marks})", [project_id, *chunk])
            found.update(cursor.fetchall())
    return found


def _follow(ref, redirect: dict):
    while id(ref) in redirect and redirect[id(ref)] is not ref:
        ref = redirect[id(ref)]
    return ref


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _takes_part(ticket, address: str) -> bool:
    address = (address or "").lower()
    if not address:
        return False
    if ticket.record_id and ticket.record and (ticket.record.email or "").lower() == address:
        return True
    for from_address, to, cc in Email.objects.filter(ticket=ticket).values_list("from_address", "to", "cc")[
        :500
    ]:
        if from_address.lower() == address or address in {x.lower() for x in (to or []) + (cc or [])}:
            return True
    return False


def _ticket_from_subject(project, numbers: list[str], sender: str):
    from postdesk.tickets.models import Ticket

    for number in numbers:
        ticket = Ticket.objects.filter(project=project, number=number).select_related("record").first()
        if ticket is not None and _takes_part(ticket, sender):
            return ticket
    return None


def _maybe_auto_respond(email: Email, a: Analysis, ctx: ProjectContext, row: IncomingMessage) -> None:
    from postdesk.inbound.models import AutoResponseLog

    sender = email.from_address.lower()
    day_start = clock.now().replace(hour=0, minute=0, second=0, microsecond=0)
    context = rules.Context(
        headers=a.headers,
        mail_from=row.mail_from,
        sender=sender,
        is_report=False,
        is_new_thread=True,
        own_addresses=ctx.own_addresses,
        responses_today=AutoResponseLog.objects.filter(
            project=ctx.project, address=sender, at__gte=day_start
        ).count()
        if sender
        else 0,
    )
    blocked = rules.auto_response_blocked_by(context)
    if blocked:
        log.debug("no automatic response to email %s: %s", email.pk, blocked)
        return
    from postdesk.outbound.services import queue_auto_response

    if queue_auto_response(email, ctx.project.auto_response_template) is not None:
        AutoResponseLog.objects.create(project=ctx.project, address=sender)


def process_spooled(limit: int = BATCH, slot: int | None = None,
                    shared: SharedContexts | None = None) -> list[int] | None:
    """Claim up to `limit` spooled messages and process them: analysed first (no transaction open), then stored
    (RawMessage + IncomingMessage) and written (email, thread, content, search index, ...) in one transaction, after
    which the spool forgets them. Returns the IncomingMessage ids stored (None: the spool is empty).

    Idempotent: a message whose spool row outlived the commit (a crash in between) is recognised by its spool key
    and not stored twice. A message that fails to analyse or write is still stored, marked failed (kept raw, shown
    to supervisors). A storage error leaves the batch in the spool, claimed until a worker takes it back; a message
    that cannot be stored while others of its batch can is set aside in the spool (tried again after
    spool.CLAIM_TIMEOUT) and does not hold up the rest."""
    from postdesk.inbound import spool

    _, rows = spool.claim(limit, slot)
    if not rows:
        return None
    deliveries = _spooled_deliveries(rows)
    contexts: dict[int, ProjectContext] = shared.fresh() if shared is not None else {}
    analyses: list[dict] = []  # per delivery: language detection on/off -> Analysis (or the exception it raised)
    for delivery in deliveries:
        by_setting: dict[bool, object] = {}
        for account in delivery.accounts:
            detect = _project_context(account.project_id, contexts).project.language_detection
            if detect not in by_setting:
                try:
                    by_setting[detect] = analyse(delivery.raw, detect_language=detect, fallback_id=_NO_ID_YET)
                except Exception as exc:  # parse_message never raises by contract; belt and braces
                    log.exception("analysis of spooled message %s failed", delivery.spool_key)
                    by_setting[detect] = exc
        analyses.append(by_setting)
    try:
        with transaction.atomic():
            todo = _store_and_write(deliveries, analyses, contexts)
    except Exception:
        if len(rows) == 1:
            raise  # stays claimed: taken back by the next job (with newer mail, which then tells a bad message apart)
        log.exception("a spooled batch could not be stored; storing its messages one by one")
        todo, aside = [], []
        for row, delivery, by_setting in zip(rows, deliveries, analyses, strict=True):
            try:
                with transaction.atomic():
                    todo += _store_and_write([delivery], [by_setting], contexts)
            except Exception:
                log.exception("spooled message %s could not be stored; it stays in the spool", delivery.spool_key)
                aside.append(row[0])
        if len(aside) == len(rows):
            raise  # nothing could be stored (the database is away, the disk full): the batch stays claimed
        spool.set_aside(aside)
        rows = [row for row in rows if row[0] not in aside]
    spool.release([row[0] for row in rows])
    return [row.pk for row, _, _ in todo]


def _store_and_write(deliveries: list, analyses: list[dict], contexts: dict) -> list:
    """Store the deliveries (RawMessage + IncomingMessage per project) and write their analysed emails; the
    (row, raw, analysis) items written."""
    from postdesk.inbound.intake import store

    todo = []
    for delivery, by_setting in zip(deliveries, analyses, strict=True):
        if not delivery.accounts:
            continue
        for row in store(delivery).rows:
            analysis = by_setting[contexts[row.project_id].project.language_detection]
            if isinstance(analysis, Analysis) and analysis.keys and analysis.keys[0] == _NO_ID_YET:
                analysis = dataclasses.replace(analysis, keys=[fallback_message_id(row.pk), *analysis.keys[1:]])
            todo.append((row, delivery.raw, analysis))
    _write_analysed(todo, contexts)
    return todo


_NO_ID_YET = "<intake-pending@postdesk.invalid>"  # replaced by fallback_message_id once the row has its id


def _spooled_deliveries(rows) -> list:
    import datetime as dt

    from postdesk.inbound import spool
    from postdesk.inbound.intake import Delivery
    from postdesk.mailboxes.models import EmailAccount

    wanted = sorted({account_id for row in rows for account_id, _ in json.loads(row[7])}) or [0]
    with connection.cursor() as cursor:  # plain SQL: per batch (the ORM's query building cost more than the read)
        cursor.execute(f"SELECT id, project_id FROM {EmailAccount._meta.db_table} WHERE id IN "
                       f"({', '.join(['%s'] * len(wanted))}) AND project_id IS NOT NULL", wanted)
        accounts = {pk: EmailAccount(pk=pk, project_id=project_id) for pk, project_id in cursor.fetchall()}
    deliveries = []
    for spool_id, received_at, protocol, peer, helo, mail_from, rcpt_to, targets, key, raw in rows:
        chosen = [accounts[a] for a, _ in json.loads(targets) if a in accounts]  # a deleted account: dropped
        deliveries.append(Delivery(raw=bytes(raw), mail_from=mail_from, rcpt_to=json.loads(rcpt_to),
                                   accounts=chosen, protocol=protocol, peer=peer, helo=helo,
                                   received_at=dt.datetime.fromisoformat(received_at),
                                   spool_key=spool.spool_key(spool_id), dedup_key=key))
    return deliveries


def pending_ids(limit: int = 1000, older_than_seconds: float = 0) -> list[int]:
    """Pending rows (optionally only those waiting longer than a few seconds: their job was lost)."""
    import datetime as dt

    qs = IncomingMessage.objects.filter(state=IncomingMessage.State.PENDING)
    if older_than_seconds:
        qs = qs.filter(received_at__lt=clock.now() - dt.timedelta(seconds=older_than_seconds))
    return list(qs.order_by("id").values_list("id", flat=True)[:limit])
