"""Processing of stored inbound messages, in the worker.

``analyse`` is a pure function over the raw bytes and the project's settings (MIME parsing, delivery-report
recognition, threading keys, language). ``process`` claims a batch of IncomingMessage rows, analyses them outside any
transaction, then writes the emails, threads, queue routing, search index, report events and automatic responses in
one short transaction. A message that fails is marked failed (kept raw, retried by recovery) and never holds up the
others."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.db import transaction

from postdesk.core import clock
from postdesk.emails import search, threads
from postdesk.emails.models import Attachment, Direction, Email, EmailContent, Kind, Status
from postdesk.inbound import jwz, rules
from postdesk.inbound.mime import ParsedMessage, first_line, parse_message
from postdesk.inbound.models import IncomingMessage
from postdesk.inbound.reports import Report, detect_report

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
    """Process these IncomingMessage ids (those still pending). Safe to run twice: done rows are skipped."""
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
                fallback_id=f"<intake-{row.pk}@postdesk.invalid>",
            )
        except Exception as exc:  # parse_message never raises by contract; belt and braces
            log.exception("analysis of incoming %s failed", row.pk)
            analysis = exc
        analysed.append((row, raw, analysis))
    done = 0
    with transaction.atomic():
        still = set(
            IncomingMessage.objects.filter(
                pk__in=[r.pk for r in rows], state=IncomingMessage.State.PENDING
            ).values_list("id", flat=True)
        )
        for row, raw, analysis in analysed:
            if row.pk not in still:
                continue
            try:
                with transaction.atomic():
                    if isinstance(analysis, Exception):
                        raise analysis
                    email = write(row, raw, analysis, contexts[row.project_id])
                    IncomingMessage.objects.filter(pk=row.pk).update(
                        state=IncomingMessage.State.DONE, email=email, attempts=row.attempts + 1
                    )
                    done += 1
            except Exception as exc:
                log.exception("incoming message %s could not be processed", row.pk)
                IncomingMessage.objects.filter(pk=row.pk).update(
                    state=IncomingMessage.State.FAILED,
                    attempts=row.attempts + 1,
                    error=f"{type(exc).__name__}: {exc}"[:2000],
                )
    return done


def write(row: IncomingMessage, raw: bytes, a: Analysis, ctx: ProjectContext) -> Email:
    project = ctx.project
    p = a.parsed
    sender = p.from_.address if p.from_ else ""
    is_report = a.report is not None
    if p.parse_error:
        status, kind = Status.UNPARSEABLE, Kind.INBOUND
    elif is_report:
        status, kind = Status.REPORT, Kind.DELIVERY_REPORT
    else:
        status, kind = Status.NEW, Kind.INBOUND
    moment = row.received_at
    email = Email(
        project=project,
        account_id=row.account_id,
        direction=Direction.IN,
        kind=kind,
        status=status,
        date=moment,
        created_at=clock.now(),
        mail_from=row.mail_from,
        from_address=sender[:320],
        from_name=(p.from_.name if p.from_ else "")[:500],
        to=[x.address for x in p.to][:100],
        cc=[x.address for x in p.cc][:100],
        reply_to=(p.reply_to[0].address if p.reply_to else "")[:998],
        subject=(p.subject or "")[:1000],
        first_line=first_line(p.text or "", 200),
        size=len(raw),
        has_attachments=any(not att.inline for att in p.attachments),
        language=(a.language or "") if status == Status.NEW else "",
        message_id=(p.message_id or "")[:998],
        in_reply_to=(p.in_reply_to or "")[:998],
        references=(p.references or "")[:20000],
        raw_id=row.raw_id,
        report=a.report.as_dict() if is_report else None,
        parse_error=p.parse_error or "",
        has_remote_images=p.has_remote_images,
    )
    # Threading: join the thread of any id the message shares, unless that thread is on a ticket the sender takes no
    # part in (copied thread headers must not smuggle mail into someone's ticket).
    thread, created = threads.thread_for(project, a.keys, jwz.base_subject(p.subject or ""), moment)
    if not created and thread.ticket_id and not _takes_part(thread.ticket, sender):
        thread = threads.Thread.objects.create(
            project=project,
            subject=jwz.base_subject(p.subject or "")[:1000],
            created_at=moment,
            last_message_at=moment,
        )
        created = True
        a.keys = a.keys[:1]
    ticket = thread.ticket if thread.ticket_id else None
    if ticket is None and a.ticket_numbers and status == Status.NEW:
        ticket = _ticket_from_subject(project, a.ticket_numbers, sender)
        if ticket is not None and thread.ticket_id is None:
            thread.ticket = ticket
            thread.save(update_fields=["ticket"])
            created = False
    email.thread = thread
    if status == Status.NEW:
        queue = ctx.default_queue
        if project.language_detection and project.email_queue and a.language:
            queue = ctx.queues_by_language.get(a.language, ctx.default_queue)
        email.queue = queue
        if ticket is not None:
            email.ticket = ticket
    email.save()
    EmailContent.objects.create(email=email, text=p.text or "", html=p.html or "")
    if p.attachments:
        Attachment.objects.bulk_create(
            Attachment(
                email=email,
                filename=att.filename[:255],
                original_filename=att.original_filename[:1000],
                content_type=att.content_type[:255],
                size=att.size,
                content_id=(att.content_id or "")[:998],
                inline=att.inline,
                data=att.data,
            )
            for att in p.attachments
        )
    threads.remember(project, thread, a.keys, email)
    threads.touch(thread, moment)
    search.index([(email.pk, project.pk, email.subject, p.text or "", f"{email.from_name} {sender}")])

    if ticket is not None and status == Status.NEW:
        from postdesk.tickets.services import email_joined

        email_joined(ticket, email)
    if is_report:
        from postdesk.emails.services import record_report

        record_report(email, a.report, row.rcpt_to)
    elif status == Status.NEW and created and project.auto_response_template_id:
        _maybe_auto_respond(email, a, ctx, row)
    return email


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


def pending_ids(limit: int = 1000, older_than_seconds: float = 0) -> list[int]:
    """Pending rows (optionally only those waiting longer than a few seconds: their job was lost)."""
    import datetime as dt

    qs = IncomingMessage.objects.filter(state=IncomingMessage.State.PENDING)
    if older_than_seconds:
        qs = qs.filter(received_at__lt=clock.now() - dt.timedelta(seconds=older_than_seconds))
    return list(qs.order_by("id").values_list("id", flat=True)[:limit])
