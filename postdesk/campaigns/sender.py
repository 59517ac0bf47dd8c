"""Sending a campaign: each message is rendered from the template prepared once (string substitution into
prepared MIME), DKIM-signed, and sent over a few pooled connections to the mass relay in parallel; recipients are
claimed in chunks and their outcomes recorded in bulk. Pausing stops between chunks. After a crash, recipients
caught mid-send are resolved from the sending journal, so nobody gets a second copy."""

from __future__ import annotations

import hashlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F

from postdesk.campaigns.models import Campaign, CampaignRecipient
from postdesk.core import clock
from postdesk.core.crypto import derive_key
from postdesk.core.sqlbulk import db_datetime, db_json, insert, update_ids
from postdesk.emails.models import (
    EVENT_BITS,
    DeliveryEvent,
    Direction,
    Email,
    EventKind,
    Kind,
    RawMessage,
    Status,
)
from postdesk.emails.services import verp_address
from postdesk.outbound import journal, tracking
from postdesk.outbound.compose import make_message_id, prepare_template
from postdesk.outbound.dkim import DkimSigner
from postdesk.outbound.pool import Endpoint, Pool, SmtpError

log = logging.getLogger(__name__)
CHUNK = 500
CONNECTIONS = 3
POOL = Pool(max_idle=CONNECTIONS)
# Email columns a raw INSERT must fill (the ORM's defaults): blank text, zero counters, no flags.
EMAIL_DEFAULT_COLUMNS = ["mail_from", "reply_to", "first_line", "size", "has_attachments", "language", "in_reply_to",
                         "references", "parse_error", "has_remote_images", "show_images", "is_spam", "return_path",
                         "attempts", "smtp_response", "event_flags"]
EMAIL_DEFAULTS = ("", "", "", 0, False, "", "", "", "", False, False, False, "", 0, "", 0)


def tracking_key() -> bytes:
    return derive_key("tracking")


def tracking_base() -> str:
    return settings.CONFIG.public_url


def relay_endpoint(account) -> Endpoint:
    if account.host:
        return Endpoint(host=account.host, port=account.port or 25, security=account.security, auth=account.auth,
                        username=account.username, tls_verify=account.tls_verify, ca_file=account.ca_file or "")
    host, _, port = settings.CONFIG.mass_relay.rpartition(":")
    return Endpoint(host=host or "127.0.0.1", port=int(port or 25), security="none", auth="none", username="",
                    tls_verify=True, ca_file="")


class Prepared:
    """The campaign's template, prepared once: MIME with placeholders, link targets, the DKIM signer."""

    def __init__(self, campaign: Campaign):
        account, template = campaign.account, campaign.template
        base = tracking_base()
        html = template.body_html or None
        links: list[str] = []
        if html and campaign.track_clicks:
            html, links = tracking.rewrite_links(html, lambda i, target: f"{base}/t/c/{{{{ _link_{i} }}}}")
        if html and campaign.track_opens:
            html = tracking.insert_open_pixel(html, f"{base}/t/o/{{{{ _open }}}}")
        self.links = links
        self.message = prepare_template(
            from_address=account.address, from_name=account.display_name, subject_template=template.subject,
            text_template=template.body + "\n\n--\nUnsubscribe: {{ _unsubscribe }}\n", html_template=html,
            headers={"Precedence": "bulk"},
        )
        self.signer = DkimSigner(account.dkim_private_key, account.domain, account.dkim_selector)
        self.tokens = tracking.TrackingTokens(tracking_key())
        self.base = base
        self.account = account
        # the unsubscribe URL is this prefix and a base64url token: checked once here, formatted per message
        self.unsubscribe_prefix = f"{base}/t/u/"
        self.one_click = self.unsubscribe_prefix.startswith("https://")
        if self.one_click:
            tracking.list_unsubscribe_headers(self.unsubscribe_prefix + "token", None)

    def render(self, email_id: int, message_id: str, address: str, fields: dict) -> bytes:
        values = dict(fields)
        make = self.tokens.make
        for i in range(len(self.links)):
            values[f"_link_{i}"] = make(tracking.KIND_CLICK, email_id, i)
        values["_open"] = make(tracking.KIND_OPEN, email_id)
        unsubscribe = self.unsubscribe_prefix + make(tracking.KIND_UNSUBSCRIBE, email_id)
        values["_unsubscribe"] = unsubscribe
        headers = {"X-Postdesk-Id": str(email_id), "List-Unsubscribe": f"<{unsubscribe}>"}
        if self.one_click:  # RFC 8058 needs https; a plain-http installation (a demo) offers the link alone
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        raw = self.message.render(address, values, message_id, headers)
        return self.signer.sign(raw)


class Claimed:
    """A claimed recipient (pk, address, fields, record_id, email_id) or its email (pk, message_id): plain rows, as
    model instances cost more to build than the rest of a message's bookkeeping."""

    __slots__ = ("pk", "address", "fields", "record_id", "email_id", "message_id", "return_path")

    def __init__(self, pk, *, address="", fields=None, record_id=None, email_id=None, message_id=""):
        self.pk, self.address, self.fields, self.record_id = pk, address, fields or {}, record_id
        self.email_id, self.message_id, self.return_path = email_id, message_id, ""


def claim(campaign: Campaign, prepared: Prepared, limit: int) -> list[tuple[Claimed, Claimed]]:
    """Move up to `limit` pending recipients to 'sending' and give each its outbound Email row (one transaction).
    Returns (recipient, email) pairs."""
    moment = clock.now()
    with transaction.atomic():
        recipients = [
            Claimed(pk, address=address, fields=fields, record_id=record_id, email_id=email_id)
            for pk, address, fields, record_id, email_id in CampaignRecipient.objects.select_for_update(
                skip_locked=True
            )
            .filter(campaign=campaign, state=CampaignRecipient.State.PENDING)
            .order_by("id")
            .values_list("id", "address", "fields", "record_id", "email_id")[:limit]
        ]
        if not recipients:
            return []
        update_ids(CampaignRecipient, "state = %s", [CampaignRecipient.State.SENDING], [r.pk for r in recipients])
        fresh = [r for r in recipients if r.email_id is None]
        domain = campaign.account.domain
        account = campaign.account
        when = db_datetime(moment)
        subject = campaign.template.subject[:1000]
        columns = ["project_id", "account_id", "direction", "kind", "status", "date", "created_at", "from_address",
                   "from_name", "to", "cc", "bcc", "subject", "sent_by_id", "template_id", "campaign_id", "record_id",
                   "message_id", "next_attempt_at"] + EMAIL_DEFAULT_COLUMNS
        rows = [
            (campaign.project_id, account.pk, Direction.OUT, Kind.MASS, Status.SENDING, when, when, account.address,
             account.display_name, db_json([r.address]), "[]", "[]", subject, campaign.created_by_id,
             campaign.template_id, campaign.pk, r.record_id, make_message_id(domain), when) + EMAIL_DEFAULTS
            for r in fresh
        ]
        new_ids = insert(Email, columns, rows)
        emails = [Claimed(pk, message_id=row[17]) for pk, row in zip(new_ids, rows, strict=True)]
        fresh_emails = {r.pk: e for r, e in zip(fresh, emails, strict=True)}
        with connection.cursor() as cursor:
            cursor.executemany(f"UPDATE {CampaignRecipient._meta.db_table} SET email_id = %s WHERE id = %s",
                               [(e.pk, r.pk) for r, e in zip(fresh, emails, strict=True)])
        fresh_ids = {r.pk for r in fresh}
        again = [r.email_id for r in recipients if r.pk not in fresh_ids]
        if again:  # claimed again after a temporary failure: the claim time tells recovery this claim is live
            Email.objects.filter(pk__in=again).update(next_attempt_at=moment)
        existing = {pk: Claimed(pk, message_id=m) for pk, m in
                    Email.objects.filter(pk__in=again).values_list("id", "message_id")}
        return [(r, fresh_emails[r.pk] if r.pk in fresh_ids else existing[r.email_id]) for r in recipients]


def base_address(campaign: Campaign) -> str:
    """Bounces go to a VERP subaddress of the project's forwarding address (it reaches postdesk), else the account."""
    cached = getattr(campaign, "_base_address", None)
    if cached is None:
        forwarding = campaign.project.inbound_accounts.filter(enabled=True).first()
        cached = campaign._base_address = forwarding.address if forwarding else campaign.account.address
    return cached


def _transmit(campaign: Campaign, prepared: Prepared, endpoint: Endpoint):
    """The work of one connection: render, sign and send its part of a chunk; (recipient, email, raw, outcome, reply)
    per message."""
    base = base_address(campaign)

    def work(part):
        results = []
        conn = None
        try:
            for recipient, email in part:
                raw = prepared.render(email.pk, email.message_id, recipient.address, recipient.fields)
                try:
                    if conn is None:
                        conn = POOL.get(endpoint, "")
                    email.return_path = verp_address(base, email.pk)
                    _, reply = conn.send(email.return_path, [recipient.address], raw,
                                         on_data_start=lambda e=email: journal.record(e.pk, "data"),
                                         on_data_refused=lambda e=email: journal.record(e.pk, "refused"))
                    results.append((recipient, email, raw, "sent", reply))
                except SmtpError as exc:
                    if conn is not None:
                        POOL.put(endpoint, "", conn, healthy=False)
                        conn = None
                    results.append((recipient, email, raw, "dropped" if exc.permanent else "failed", str(exc)))
        finally:
            if conn is not None:
                POOL.put(endpoint, "", conn)
        return results

    return work


def _submit(executor: ThreadPoolExecutor, work, claimed: list) -> list:
    return [executor.submit(work, part) for part in (claimed[i::CONNECTIONS] for i in range(CONNECTIONS)) if part]


def _gather(futures: list) -> list[tuple]:
    out = []
    for future in futures:
        out += future.result()
    return out


def send_chunk(campaign: Campaign, prepared: Prepared, claimed: list, endpoint: Endpoint) -> list[tuple]:
    """Render, sign and send over CONNECTIONS connections; returns (recipient, email, raw, outcome, reply) per
    message."""
    with ThreadPoolExecutor(max_workers=CONNECTIONS) as executor:
        return _gather(_submit(executor, _transmit(campaign, prepared, endpoint), claimed))


def record(campaign: Campaign, results: list[tuple]) -> None:
    moment = clock.now()
    sent = [r for r in results if r[3] == "sent"]
    dropped = [r for r in results if r[3] == "dropped"]
    failed = [r for r in results if r[3] == "failed"]  # temporary: back to pending, tried again later
    with transaction.atomic():
        when = db_datetime(moment)
        done = sent + dropped
        raw_ids = insert(RawMessage, ["data", "sha256", "created_at"],
                         [(raw, hashlib.sha256(raw).hexdigest(), when) for _, _, raw, _, _ in done])
        outcomes = {  # status, the event and its bit (the event counted once: event_flags)
            "sent": (Status.SENT, EventKind.DELIVERED, EVENT_BITS[EventKind.DELIVERED]),
            "dropped": (Status.DROPPED, EventKind.DROPPED, EVENT_BITS[EventKind.DROPPED]),
        }
        with connection.cursor() as cursor:
            cursor.executemany(
                f"UPDATE {Email._meta.db_table} SET status = %s, smtp_response = %s, raw_id = %s, size = %s, "
                "sent_at = %s, attempts = attempts + 1, return_path = %s, event_flags = event_flags | %s WHERE id = %s",
                [(outcomes[outcome][0], reply[:500], raw_id, len(raw), when,
                  email.return_path or verp_address(base_address(campaign), email.pk), outcomes[outcome][2], email.pk)
                 for (_, email, raw, outcome, reply), raw_id in zip(done, raw_ids, strict=True)])
        for state, rows in ((CampaignRecipient.State.SENT, sent), (CampaignRecipient.State.FAILED, dropped),
                            (CampaignRecipient.State.PENDING, failed)):
            update_ids(CampaignRecipient, "state = %s", [state], [r[0].pk for r in rows])
        insert(DeliveryEvent, ["email_id", "kind", "at", "detail"],
               [(r[1].pk, outcomes[r[3]][1], when, db_json({"reply": r[4][:200]})) for r in done], returning=False)
        from postdesk.reports.counters import bump_bulk

        bump_bulk(campaign.project_id, campaign.created_by_id, moment.date(), "mass",
                  {"sent": len(sent) + len(dropped), "delivered": len(sent), "dropped": len(dropped)})
        Campaign.objects.filter(pk=campaign.pk).update(sent=F("sent") + len(sent), failed=F("failed") + len(dropped))


def recover_interrupted(campaign: Campaign) -> None:
    """Recipients left in 'sending' by a crash: those whose message transmission started count as sent; the others
    go back to pending."""
    from postdesk.outbound.sender import STUCK_AFTER

    started = journal.started_ids()
    # only claims older than any chunk takes to send: a sending job running right now keeps its recipients
    stale = dict(campaign=campaign, state=CampaignRecipient.State.SENDING,
                 email__next_attempt_at__lt=clock.now() - STUCK_AFTER)
    stuck = list(CampaignRecipient.objects.filter(**stale).values_list("id", "email_id"))
    if not stuck:
        return
    went = [rid for rid, eid in stuck if eid in started]
    back = [rid for rid, eid in stuck if eid not in started]
    with transaction.atomic():
        # two senders may recover at once (a restart and the periodic job): each row changes, and counts, once
        moved = CampaignRecipient.objects.filter(pk__in=went, **stale).update(state=CampaignRecipient.State.SENT)
        Email.objects.filter(pk__in=[eid for rid, eid in stuck if eid in started], status=Status.SENDING).update(
            status=Status.SENT, smtp_response="unconfirmed: sending stopped after transmission; not sent again")
        CampaignRecipient.objects.filter(pk__in=back, **stale).update(state=CampaignRecipient.State.PENDING)
        Campaign.objects.filter(pk=campaign.pk).update(sent=F("sent") + moved)


def _status(campaign: Campaign) -> str | None:
    return Campaign.objects.filter(pk=campaign.pk).values_list("status", flat=True).first()


def _still_sending(campaign: Campaign) -> bool:
    return _status(campaign) == Campaign.Status.SENDING


def _send_throttled(campaign: Campaign, prepared: Prepared, endpoint: Endpoint, chunk: int, rate: int) -> None:
    """An account with a throttle: chunks of at most one second's worth, each followed by the rest of its second."""
    while _still_sending(campaign):
        started = time.monotonic()
        claimed = claim(campaign, prepared, max(1, min(chunk, rate)))
        if not claimed:
            return
        record(campaign, send_chunk(campaign, prepared, claimed, endpoint))
        spare = len(claimed) / rate - (time.monotonic() - started)
        if spare > 0:
            time.sleep(spare)


def _send_overlapped(campaign: Campaign, prepared: Prepared, endpoint: Endpoint, chunk: int) -> None:
    """Unthrottled: while the connections send one chunk, this thread records the chunk before it and claims the
    next (the database work no longer leaves the connections idle). A pause takes effect at the next claim; the
    chunk in flight is finished and recorded. Should recording fail, the executor still lets the messages on the wire
    finish; the journal then tells recovery they went."""
    work = _transmit(campaign, prepared, endpoint)
    with ThreadPoolExecutor(max_workers=CONNECTIONS) as executor:
        claimed = claim(campaign, prepared, chunk) if _still_sending(campaign) else []
        done: list[tuple] = []
        while claimed:
            in_flight = _submit(executor, work, claimed)
            if done:
                record(campaign, done)
            claimed = claim(campaign, prepared, chunk) if _still_sending(campaign) else []
            done = _gather(in_flight)
        if done:
            record(campaign, done)


def run(campaign_id: int, *, chunk: int = CHUNK) -> dict:
    campaign = Campaign.objects.select_related("account", "template", "project").get(pk=campaign_id)
    if campaign.status in (Campaign.Status.DONE, Campaign.Status.CANCELLED, Campaign.Status.PAUSED):
        return {"status": campaign.status}
    recover_interrupted(campaign)
    if campaign.account.verified_at is None:
        Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED,
                                                       error="the sending domain is not verified")
        return {"status": "paused"}
    prepared = Prepared(campaign)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING, links=prepared.links,
                                                   started_at=campaign.started_at or clock.now())
    endpoint = relay_endpoint(campaign.account)
    rate = campaign.account.max_per_second
    if rate:
        _send_throttled(campaign, prepared, endpoint, chunk, rate)
    else:
        _send_overlapped(campaign, prepared, endpoint, chunk)
    status = _status(campaign)
    if status != Campaign.Status.SENDING:  # paused or cancelled meanwhile
        return {"status": status}
    # done when nothing is pending and no other sending job still has recipients in flight
    left = CampaignRecipient.objects.filter(
        campaign=campaign, state__in=[CampaignRecipient.State.PENDING, CampaignRecipient.State.SENDING]
    ).exists()
    if not left:
        Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.SENDING).update(
            status=Campaign.Status.DONE, finished_at=clock.now())
    return {"status": "done" if not left else "sending"}

