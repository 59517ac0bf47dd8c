"""Sending queued emails through their SMTP account: claim, deliver over pooled connections, record outcomes.

Outcomes: accepted by the relay -> status sent + event Delivered; a 5xx -> Dropped with the server's reply kept;
4xx or connection errors -> retried with exponential backoff, at most MAX_ATTEMPTS times, then Dropped; the account's
credentials refused -> Failed with the server's message, the account marked with the error."""

from __future__ import annotations

import copy
import datetime as dt
import logging
import queue
import threading
from collections import defaultdict

from django.db import connection, transaction

from postdesk.core import clock
from postdesk.core.sqlbulk import db_datetime
from postdesk.emails.models import Direction, Email, EventKind, Status
from postdesk.emails.services import add_events
from postdesk.mailboxes.models import Auth, EmailAccount
from postdesk.outbound import journal
from postdesk.outbound.pool import POOL, Endpoint, SmtpError

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8
BACKOFF_BASE = 30  # seconds: 30 s, 1 min, 2 min, 4 min, ... capped at 1 h


def backoff(attempt: int) -> dt.timedelta:
    return dt.timedelta(seconds=min(BACKOFF_BASE * (2 ** max(attempt - 1, 0)), 3600))


def endpoint_for(account: EmailAccount) -> tuple[Endpoint, str]:
    """The connection settings and the secret (password or fresh OAuth access token) of an account."""
    if account.auth == Auth.XOAUTH2:
        from postdesk.outbound.oauth import OAuthError, access_token

        try:
            secret = access_token(account)
        except OAuthError as exc:
            raise SmtpError(f"OAuth: {exc}", account_error=True, permanent=True)
    else:
        secret = account.password or ""
    endpoint = Endpoint(
        host=account.host,
        port=account.port or 587,
        security=account.security,
        auth=account.auth,
        username=account.username,
        tls_verify=account.tls_verify,
        ca_file=account.ca_file or "",
    )
    return endpoint, secret


def claim(ids: list[int], known: dict[int, Email] | None = None) -> list[Email]:
    """Move queued emails to 'sending' (one statement); only those this call moved are returned. ``known``: rows this
    process has just written (with their account and raw message), used as they are instead of being read again."""
    if not ids:
        return []
    moment = clock.now()
    table = connection.ops.quote_name(Email._meta.db_table)
    marks = ", ".join(["%s"] * len(ids))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET status = %s, next_attempt_at = %s WHERE id IN ({marks}) AND status = %s "
            "AND direction = %s AND campaign_id IS NULL RETURNING id",
            [Status.SENDING, db_datetime(moment), *ids, Status.QUEUED, Direction.OUT],
        )
        claimed = [row[0] for row in cursor.fetchall()]
    known = known or {}
    emails = [known[pk] for pk in claimed if pk in known]
    for email in emails:
        email.status, email.next_attempt_at = Status.SENDING, moment
    unknown = [pk for pk in claimed if pk not in known]
    if unknown:
        emails += Email.objects.filter(pk__in=unknown).select_related("account", "raw")
    return sorted(emails, key=lambda e: e.pk)


BATCH = 50


class SoonSender:
    """Sending right after the commit, from a thread of the same process, instead of through the job store and the
    worker: used by the web role (`postdesk web`), where an agent's reply then reaches the relay a job-store write
    and a worker poll sooner. Safe like the job: `claim` moves each email once, the journal covers a crash, and the
    worker's minutely `send_due` sends whatever a dead process left queued (or retries, as scheduled)."""

    def __init__(self):
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, ids: list[int], emails: list[Email] = ()) -> None:
        """Send these (``emails``: their rows as just committed by this process, so they need not be read again)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():  # started lazily: after a fork, in the child
                self._thread = threading.Thread(target=self._run, name="postdesk-send-soon", daemon=True)
                self._thread.start()
        self._queue.put((list(ids), list(emails)))

    def _run(self) -> None:
        while True:
            ids, emails = self._queue.get()
            while True:  # whatever else is waiting goes in the same batch
                try:
                    more_ids, more_emails = self._queue.get_nowait()
                except queue.Empty:
                    break
                ids += more_ids
                emails += more_emails
            try:
                deliver(ids, fill=False, known={e.pk: e for e in emails})
            except Exception:  # the database or the relay code failed: the job takes over
                log.exception("sending from the web process failed; queuing the job")
                try:
                    from postdesk.outbound.tasks import send_emails

                    send_emails(ids)
                except Exception:  # the job store too: send_due finds them queued within a minute
                    log.exception("could not queue the send job")
            finally:
                connection.close_if_unusable_or_obsolete()


SOON = SoonSender()
SEND_FROM_PROCESS = False  # set by `postdesk web` before its workers fork


def send_after_commit(ids: list[int], emails: list[Email] = ()) -> None:
    """Have these emails sent once the current transaction commits: from this process in the web role (``emails``:
    the rows as written, with their account and raw message, so that the sender need not read them again),
    otherwise by the worker (a job)."""
    if SEND_FROM_PROCESS:
        emails = [copy.copy(e) for e in emails]  # the sender's own: the caller may still read or change its instances
        transaction.on_commit(lambda: SOON.submit(ids, emails))
    else:
        from postdesk.core import jobs
        from postdesk.outbound.tasks import send_emails

        jobs.on_commit(send_emails, ids)


def deliver(ids: list[int], *, fill: bool = True, known: dict[int, Email] | None = None) -> dict:
    """Send these emails (those still queued), and, when the queue is deep, other due ones along with them (their
    own jobs then find nothing left to do): one job sends a batch over one connection. ``fill=False``: only these
    (a reply sent right after its commit must not wait for a look at the queue). Returns counts by outcome."""
    if fill and len(ids) < BATCH:
        ids = list(ids) + [i for i in due_ids(limit=BATCH) if i not in set(ids)][: BATCH - len(ids)]
    emails = claim(ids, known)
    by_account: dict[int, list[Email]] = defaultdict(list)
    for email in emails:
        by_account[email.account_id].append(email)
    outcomes: list[tuple[Email, str, str, dict]] = []
    for group in by_account.values():
        outcomes += _deliver_group(group)
    _record(outcomes)
    counts: dict[str, int] = defaultdict(int)
    for _, outcome, _, _ in outcomes:
        counts[outcome] += 1
    return dict(counts)


def _deliver_group(emails: list[Email]) -> list[tuple[Email, str, str, dict]]:
    account = emails[0].account
    out = []
    try:
        endpoint, secret = endpoint_for(account)
    except SmtpError as exc:
        return [(e, "failed", str(exc), {}) for e in emails]
    conn = None
    for email in emails:
        recipients = list(dict.fromkeys([*email.to, *email.cc, *email.bcc]))
        try:
            if conn is None:
                conn = POOL.get(endpoint, secret)
            refused, reply = conn.send(
                email.return_path,
                recipients,
                bytes(email.raw.data),
                on_data_start=lambda e=email: journal.record(e.pk, "data"),
                on_data_refused=lambda e=email: journal.record(e.pk, "refused"),
            )
            journal.record(email.pk, "ok")
            out.append((email, "sent", reply, {"refused": refused} if refused else {}))
        except SmtpError as exc:
            if conn is not None:
                POOL.put(endpoint, secret, conn, healthy=False)
                conn = None
            if exc.account_error:
                out.append((email, "failed", str(exc), {"account_error": True}))
                from postdesk.outbound.oauth import mark_error

                mark_error(account, f"sending failed: {exc}")
            elif exc.permanent:
                out.append((email, "dropped", str(exc), {"code": exc.code}))
            else:
                out.append((email, "retry", str(exc), {"code": exc.code}))
    if conn is not None:
        POOL.put(endpoint, secret, conn)
    return out


def _record(outcomes) -> None:
    """Outcomes of a batch: one UPDATE per email (executemany), the events in bulk, statistics per group."""
    moment = clock.now()
    when = db_datetime(moment)
    retry_ids = []
    rows, events = [], []
    for email, outcome, reply, detail in outcomes:
        attempts = email.attempts + 1
        email.attempts = attempts
        if outcome == "sent":
            rows.append((Status.SENT, when, reply[:2000], attempts, None, email.pk))
            events.append((email, EventKind.DELIVERED, {"reply": reply[:500], **detail}))
        elif outcome == "failed":
            rows.append((Status.FAILED, None, reply[:2000], attempts, None, email.pk))
        elif outcome == "dropped" or attempts >= MAX_ATTEMPTS:
            rows.append((Status.DROPPED, None, reply[:2000], attempts, None, email.pk))
            events.append((email, EventKind.DROPPED, {"reply": reply[:500], **detail}))
        else:
            rows.append((Status.QUEUED, None, reply[:2000], attempts, db_datetime(moment + backoff(attempts)),
                         email.pk))
            events.append((email, EventKind.DEFERRED, {"reply": reply[:500], "attempt": attempts}))
            retry_ids.append((email.pk, backoff(attempts)))
    table = connection.ops.quote_name(Email._meta.db_table)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.executemany(
                f"UPDATE {table} SET status = %s, sent_at = COALESCE(%s, sent_at), smtp_response = %s, "
                "attempts = %s, next_attempt_at = COALESCE(%s, next_attempt_at) WHERE id = %s",
                rows,
            )
        add_events(events, at=moment)
    if retry_ids:
        from postdesk.outbound.tasks import send_emails

        for email_id, delay in retry_ids:
            try:
                send_emails.schedule(args=([email_id],), delay=delay.total_seconds())
            except Exception:  # the periodic sweep retries due emails anyway
                log.warning("could not schedule retry of email %s", email_id)


STUCK_AFTER = dt.timedelta(
    minutes=2
)  # a claimed batch is sent well within this; older claims were interrupted


def recover_interrupted(stuck_after: dt.timedelta = STUCK_AFTER) -> dict:
    """Emails left in 'sending' by a crash: retry those whose content was never transmitted; the others may have
    been accepted by the relay, so they are marked sent (unconfirmed) rather than sent twice."""
    started = journal.started_ids()
    counts = {"retried": 0, "unconfirmed": 0}
    stuck = list(
        Email.objects.filter(
            direction=Direction.OUT,
            status=Status.SENDING,
            next_attempt_at__lte=clock.now() - stuck_after,
            campaign__isnull=True,  # campaign emails are the campaign sender's (campaigns.sender.recover_interrupted)
        ).values_list("id", flat=True)
    )
    with transaction.atomic():
        for email_id in stuck:
            if email_id in started:
                Email.objects.filter(pk=email_id, status=Status.SENDING).update(
                    status=Status.SENT,
                    sent_at=clock.now(),
                    smtp_response="unconfirmed: the sender stopped after transmitting; not sent again",
                )
                counts["unconfirmed"] += 1
            else:
                Email.objects.filter(pk=email_id, status=Status.SENDING).update(
                    status=Status.QUEUED, next_attempt_at=clock.now()
                )
                counts["retried"] += 1
    journal.prune()
    return counts


def due_ids(limit: int = 500) -> list[int]:
    return list(
        Email.objects.filter(direction=Direction.OUT, status=Status.QUEUED, next_attempt_at__lte=clock.now())
        .order_by("next_attempt_at", "id")
        .values_list("id", flat=True)[:limit]
    )
