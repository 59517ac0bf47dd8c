"""Every email postdesk sends is created here, in the transaction of the action that causes it, and sent by a job
after that transaction commits (outbound.tasks.send_emails). Addresses and header values are checked first: CR, LF or
other controls anywhere give a 422 naming the field and nothing is queued."""

from __future__ import annotations

import hashlib
import re

from django.conf import settings

from postdesk.core import clock
from postdesk.core.errors import Invalid
from postdesk.core.sqlbulk import insert, insert_objects, update_ids
from postdesk.emails import search, threads
from postdesk.emails.models import Direction, Email, EmailContent, Kind, RawMessage, Status
from postdesk.emails.services import verp_address
from postdesk.inbound import jwz
from postdesk.integrations import events as webhook_events
from postdesk.outbound.compose import HeaderInjectionError, build_message, make_message_id, validate_address

PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}")


def render(template_text: str, fields: dict) -> str:
    """Substitute {{ name }} placeholders; unknown names become empty."""
    return PLACEHOLDER_RE.sub(lambda m: str(fields.get(m.group(1), "")), template_text or "")


def _addresses(field: str, values) -> list[str]:
    out = []
    for i, value in enumerate(values or []):
        try:
            out.append(validate_address(f"{field}[{i}]", str(value).strip()))
        except HeaderInjectionError as exc:
            raise Invalid(str(exc), field=getattr(exc, "field", None) or f"{field}[{i}]")
    return out


def queue_email(
    *,
    project,
    account,
    kind: str,
    to: list[str],
    subject: str,
    text: str,
    html: str | None = None,
    cc: list[str] | None = None,
    bcc: list[str] | None = None,
    reply_to_email: Email | None = None,
    ticket=None,
    thread=None,
    sent_by=None,
    template=None,
    record=None,
    disposition=None,
    campaign=None,
    headers: dict | None = None,
    null_return_path: bool = False,
    attachments: list[tuple[str, str, bytes]] | None = None,
    from_name: str | None = None,
) -> Email:
    """Create an outbound email (status queued) with its exact bytes, and queue its sending after the commit."""
    if account is None:
        raise Invalid(
            "no sender account: configure an SMTP sender account for the project", field="sender_account"
        )
    to, cc, bcc = _addresses("to", to), _addresses("cc", cc), _addresses("bcc", bcc)
    if not to:
        raise Invalid("at least one recipient is needed", field="to")
    moment = clock.now()
    domain = account.address.rpartition("@")[2] or "postdesk.invalid"
    message_id = make_message_id(domain)
    in_reply_to, references = "", []
    if reply_to_email is not None and reply_to_email.message_id:
        in_reply_to = reply_to_email.message_id
        references = jwz.parse_references(reply_to_email.references) + [reply_to_email.message_id]
    # the rows of a reply are written in plain SQL (sqlbulk): the ORM's per-field preparation of these wide rows
    # cost more than the database's work, on the path from an agent's click to the relay
    email = Email(
        project=project,
        account=account,
        direction=Direction.OUT,
        kind=kind,
        status=Status.QUEUED,
        date=moment,
        created_at=moment,
        from_address=account.address,
        from_name=from_name if from_name is not None else account.display_name,
        to=to,
        cc=cc,
        bcc=bcc,
        subject=(subject or "")[:1000],
        first_line=(text or "").strip()[:200],
        sent_by=sent_by,
        reply_to_email=reply_to_email,
        ticket=ticket,
        template=template,
        record=record,
        disposition=disposition,
        campaign=campaign,
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=" ".join(references),
        next_attempt_at=moment,
    )
    insert_objects(Email, [email])
    email.return_path = "" if null_return_path else verp_address(account.address, email.pk)
    extra = {"X-Postdesk-Id": str(email.pk), **(headers or {})}
    try:
        raw = build_message(
            from_address=account.address,
            from_name=email.from_name,
            to=to,
            cc=cc,
            subject=subject or "",
            text=text or "",
            html=html,
            message_id=message_id,
            date=moment,
            in_reply_to=in_reply_to or None,
            references=references,
            headers=extra,
            attachments=attachments or (),
        )
    except HeaderInjectionError as exc:
        raise Invalid(str(exc), field=getattr(exc, "field", None) or "headers")
    blob = RawMessage(data=raw, sha256=hashlib.sha256(raw).hexdigest(), created_at=moment)
    insert_objects(RawMessage, [blob])
    email.raw = blob
    email.size = len(raw)
    email.has_attachments = bool(attachments)
    if thread is None and reply_to_email is not None:
        thread = reply_to_email.thread
    if thread is None:
        thread = threads.Thread.objects.create(
            project=project,
            subject=jwz.base_subject(subject or "")[:1000],
            created_at=moment,
            last_message_at=moment,
            ticket=ticket,
        )
    email.thread = thread
    update_ids(Email, "return_path = %s, raw_id = %s, size = %s, has_attachments = %s, thread_id = %s",
               [email.return_path, blob.pk, email.size, email.has_attachments, thread.pk], [email.pk])
    insert(EmailContent, ["email_id", "text", "html"], [(email.pk, text or "", html or "")], returning=False)
    if attachments:
        from postdesk.emails.models import Attachment
        from postdesk.inbound.mime import safe_filename

        Attachment.objects.bulk_create(
            Attachment(email=email, filename=safe_filename(name)[:255], original_filename=name[:1000],
                       content_type=(content_type or "application/octet-stream")[:255], size=len(data), data=data)
            for name, content_type, data in attachments
        )
    threads.remember(project, thread, [message_id], email)
    threads.touch(thread, moment)
    search.index([(email.pk, project.pk, email.subject, text or "", f"{email.from_name} {account.address}")])
    search.index_addresses([(email.pk, email.from_name, email.from_address, email.to, email.cc)])
    webhook_events.email_sent(email)
    if ticket is not None:
        from postdesk.tickets.services import email_joined

        email_joined(ticket, email)
    from postdesk.reports.counters import count_sent

    count_sent(email)
    from postdesk.outbound.sender import send_after_commit

    send_after_commit([email.pk], [email])
    return email


def queue_auto_response(inbound: Email, template) -> Email | None:
    """The project's automatic response to a new inbound thread: Auto-Submitted: auto-replied, null return path."""
    from postdesk.mailboxes.services import default_sender_for

    account = default_sender_for(inbound.project)
    if account is None or not inbound.from_address:
        return None
    fields = {
        "subject": inbound.subject,
        "name": inbound.from_name or inbound.from_address,
        "email": inbound.from_address,
        "project": inbound.project.name,
    }
    subject = render(template.subject, fields) or f"Re: {inbound.subject}"
    return queue_email(
        project=inbound.project,
        account=account,
        kind=Kind.AUTO_RESPONSE,
        to=[inbound.reply_to or inbound.from_address],
        subject=subject,
        text=render(template.body, fields),
        cc=[],
        bcc=[],
        reply_to_email=inbound,
        thread=inbound.thread,
        template=template,
        headers={
            "Auto-Submitted": "auto-replied",
            "X-Auto-Response-Suppress": "All",
            "Precedence": "auto_reply",
        },
        null_return_path=True,
    )


def public_url() -> str:
    return settings.CONFIG.public_url


def test_connection(account) -> tuple[bool, str]:
    """Connect, secure and authenticate with the account's settings; report the server's own answer. Never raises,
    never includes the secret in the message."""
    from postdesk.outbound.pool import Connection, SmtpError
    from postdesk.outbound.sender import endpoint_for

    try:
        endpoint, secret = endpoint_for(account)
        conn = Connection(endpoint, secret)
    except SmtpError as exc:
        message = str(exc)
        if secret_in := (account.password or None):
            message = message.replace(secret_in, "***")
        return False, message
    try:
        banner = conn.smtp.ehlo_resp.decode("utf-8", "replace").splitlines()[0] if conn.smtp.ehlo_resp else ""
    finally:
        conn.close()
    security = {"starttls": "STARTTLS", "tls": "TLS", "none": "no encryption"}[account.security]
    auth = "no authentication" if account.auth == "none" else f"AUTH {account.auth.upper()} accepted"
    return True, f"Connected to {account.host}:{account.port} ({security}, {auth}). Server: {banner}"


test_connection.__test__ = False  # a service, not a pytest test, wherever it is imported
