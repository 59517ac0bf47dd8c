"""postdesk's emails and tickets in the vendor's shapes (../shared/reference/vcc-live-api.md), field by field: the
webhook payloads and the rows of the compatibility endpoints. docs/integrations.md maps every field.

Pure functions over loaded rows (the callers select the related rows they read); times are "YYYY-MM-DD HH:MM:SS"
strings in the server's time zone (UTC), ``*_utc`` variants always in UTC; absent values are null."""

from __future__ import annotations

import datetime as dt
import re

from django.utils import timezone

from postdesk.emails.models import Direction, Status

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
MAX_BODY_CHARS = 512 * 1024  # webhook email bodies are cut here (the whole message stays in postdesk)

# The ticket object of the webhooks and of GET /v2/projects/{key}/tickets, in this order.
TICKET_FIELDS = (
    "ticketId",
    "entityId",
    "contactId",
    "ticketNo",
    "title",
    "type",
    "description",
    "firstOpenTime",
    "lastOpenTime",
    "softDeadline",
    "status",
    "substatus",
    "createdUserId",
    "createdUserName",
    "projectId",
    "projectName",
    "userId",
    "userName",
    "firstSentTime",
    "lastSentTime",
    "firstReceivedTime",
    "lastReceivedTime",
    "lastCloseTime",
    "sentCount",
    "receivedCount",
)
# What a ticket update always carries besides the changed attributes.
TICKET_IDENTIFIERS = ("ticketId", "ticketNo", "projectId", "projectName")


def vtime(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(timezone.get_default_timezone()).strftime(TIME_FORMAT)


def vtime_utc(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).strftime(TIME_FORMAT)


def address_list(values) -> str:
    """Recipients as one string, comma-separated (as in a header)."""
    return ", ".join(values or [])


def mailbox(name: str, address: str) -> str:
    """'Name <address>' (the name quoted when it needs to be), or the bare address."""
    if not name:
        return address
    if re.search(r'[()<>\[\]:;@\\,."]', name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{address}>" if address else name


# The ticket values the vendor's ticket object is made of (events.py reads them with one SQL query; ticket_values()
# takes them from a loaded Ticket).
TICKET_VALUE_KEYS = (
    "id",
    "record_id",
    "number",
    "title",
    "type_value",
    "description",
    "created_at",
    "last_open_time",
    "soft_deadline",
    "status",
    "substatus",
    "creator_id",
    "creator_name",
    "project_key",
    "project_name",
    "owner_id",
    "owner_name",
    "first_sent_time",
    "last_sent_time",
    "first_received_time",
    "last_received_time",
    "last_close_time",
    "sent_count",
    "received_count",
)


def ticket_values(t) -> dict:
    """A Ticket (select_related project, type, owner, creator) as the values of TICKET_VALUE_KEYS."""
    return {
        "id": t.pk,
        "record_id": t.record_id,
        "number": t.number,
        "title": t.title,
        "type_value": t.type.export_value if t.type_id else None,
        "description": t.description,
        "created_at": t.created_at,
        "last_open_time": t.last_open_time,
        "soft_deadline": t.soft_deadline,
        "status": t.status,
        "substatus": t.substatus,
        "creator_id": t.creator_id,
        "creator_name": t.creator.username if t.creator_id else None,
        "project_key": t.project.key,
        "project_name": t.project.name,
        "owner_id": t.owner_id,
        "owner_name": t.owner.username if t.owner_id else None,
        "first_sent_time": t.first_sent_time,
        "last_sent_time": t.last_sent_time,
        "first_received_time": t.first_received_time,
        "last_received_time": t.last_received_time,
        "last_close_time": t.last_close_time,
        "sent_count": t.sent_count,
        "received_count": t.received_count,
    }


def ticket_object(v: dict) -> dict:
    """The vendor's ticket object from ticket values (ticket_values(), or events' SQL)."""
    return {
        "ticketId": v["id"],
        "entityId": v["record_id"],
        "contactId": v["record_id"],
        "ticketNo": v["number"],
        "title": v["title"],
        "type": v["type_value"],
        "description": v["description"],
        "firstOpenTime": vtime(v["created_at"]),
        "lastOpenTime": vtime(v["last_open_time"]),
        "softDeadline": vtime(v["soft_deadline"]),
        "status": v["status"],
        "substatus": v["substatus"],
        "createdUserId": v["creator_id"],
        "createdUserName": v["creator_name"],
        "projectId": v["project_key"],
        "projectName": v["project_name"],
        "userId": v["owner_id"],
        "userName": v["owner_name"],
        "firstSentTime": vtime(v["first_sent_time"]),
        "lastSentTime": vtime(v["last_sent_time"]),
        "firstReceivedTime": vtime(v["first_received_time"]),
        "lastReceivedTime": vtime(v["last_received_time"]),
        "lastCloseTime": vtime(v["last_close_time"]),
        "sentCount": v["sent_count"],
        "receivedCount": v["received_count"],
    }


def ticket_identifiers(obj: dict) -> dict:
    return {k: obj[k] for k in TICKET_IDENTIFIERS}


def plain_value(value):
    """A value a service passes to ticket_updated, as JSON: times as strings, rows as their ids."""
    if isinstance(value, dt.datetime):
        return vtime(value)
    if hasattr(value, "_meta") and hasattr(value, "pk"):
        return value.pk
    return value


EMAIL_FIELDS = (
    "emailId",
    "projectId",
    "entityId",
    "contactId",
    "ticketId",
    "replyEmailId",
    "userId",
    "direction",
    "from",
    "fromName",
    "fromAddress",
    "to",
    "cc",
    "bcc",
    "lastModifiedTime",
    "status",
    "forwardEmailId",
    "subject",
    "replyTo",
    "messageId",
    "inReplyTo",
    "sentTime",
    "receivedTime",
    "body",
)


# The email values the webhook is made of (events.py reads them with one SQL query).
EMAIL_VALUE_KEYS = (
    "id",
    "project_key",
    "record_id",
    "ticket_record_id",
    "ticket_id",
    "reply_to_email_id",
    "sent_by_id",
    "direction",
    "from_name",
    "from_address",
    "to",
    "cc",
    "bcc",
    "sent_at",
    "created_at",
    "status",
    "subject",
    "reply_to",
    "message_id",
    "in_reply_to",
    "date",
    "text",
)


def email_payload(v: dict, *, reply_email_id: int | None = None) -> dict:
    """The email webhook from email values (EMAIL_VALUE_KEYS). ``reply_email_id``: the email this one answers
    (outbound: the one the agent replied to; inbound: ours that it names in In-Reply-To, if known)."""
    outbound = v["direction"] == Direction.OUT
    record_id = v["record_id"] or v["ticket_record_id"]
    return {
        "emailId": v["id"],
        "projectId": v["project_key"],
        "entityId": record_id,
        "contactId": record_id,
        "ticketId": v["ticket_id"],
        "replyEmailId": reply_email_id if reply_email_id is not None else v["reply_to_email_id"],
        "userId": v["sent_by_id"],
        "direction": v["direction"],
        "from": mailbox(v["from_name"], v["from_address"]),
        "fromName": v["from_name"],
        "fromAddress": v["from_address"],
        "to": address_list(v["to"]),
        "cc": address_list(v["cc"]),
        "bcc": address_list(v["bcc"]),
        "lastModifiedTime": vtime(v["sent_at"] or v["created_at"]),
        "status": v["status"],
        "forwardEmailId": None,
        "subject": v["subject"],
        "replyTo": v["reply_to"],
        "messageId": v["message_id"],
        "inReplyTo": v["in_reply_to"],
        "sentTime": vtime(v["sent_at"] or v["date"]) if outbound else None,
        "receivedTime": None if outbound else vtime(v["date"]),
        "body": (v["text"] or "")[:MAX_BODY_CHARS],
    }


EMAIL_LOG_FIELDS = (
    "emailId",
    "queueId",
    "subject",
    "to",
    "firstLine",
    "from",
    "receivedTime",
    "receivedTime_utc",
    "lockTime",
    "lockTime_utc",
    "emailSize",
    "isSpam",
    "isVirus",
    "direction",
    "dispositionId",
    "templateId",
    "diagnosticCode",
    "lockUser",
    "title",
    "ticketNo",
    "ticketId",
    "entityId",
    "contactId",
    "name",
    "templateName",
    "dispositionName",
    "fromAddress",
)
EMAIL_LOG_RELATED = ("ticket__record", "record", "template", "disposition")

_ENHANCED_CODE = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_REPLY_CODE = re.compile(r"^\s*([245]\d\d)\b")


def diagnostic_code(e) -> str:
    """The error code of an email that did not go (the relay's enhanced status code, else its reply code), or of a
    delivery report (the first recipient's status); empty otherwise."""
    if e.report:
        recipients = e.report.get("recipients") or []
        return str(recipients[0].get("status") or "") if recipients else ""
    if e.direction != Direction.OUT or e.status == Status.SENT or not e.smtp_response:
        return ""
    match = _ENHANCED_CODE.search(e.smtp_response) or _REPLY_CODE.search(e.smtp_response)
    return match.group(1) if match else ""


def email_log_row(e) -> dict:
    """One row of the vendor's email log (select_related EMAIL_LOG_RELATED)."""
    record = e.record if e.record_id else (e.ticket.record if e.ticket_id and e.ticket.record_id else None)
    if record is not None and record.name:
        name = record.name
    else:
        name = e.from_name if e.direction == Direction.IN else ""
    return {
        "emailId": e.pk,
        "queueId": e.queue_id,
        "subject": e.subject,
        "to": address_list(e.to),
        "firstLine": e.first_line,
        "from": mailbox(e.from_name, e.from_address),
        "receivedTime": vtime(e.date),
        "receivedTime_utc": vtime_utc(e.date),
        "lockTime": vtime(e.locked_at),
        "lockTime_utc": vtime_utc(e.locked_at),
        "emailSize": e.size,
        "isSpam": e.is_spam,
        "isVirus": False,
        "direction": "inbound" if e.direction == Direction.IN else "outbound",
        "dispositionId": e.disposition_id,
        "templateId": e.template_id,
        "diagnosticCode": diagnostic_code(e),
        "lockUser": e.locked_by_id,
        "title": e.ticket.title if e.ticket_id else None,
        "ticketNo": e.ticket.number if e.ticket_id else None,
        "ticketId": e.ticket_id,
        "entityId": record.pk if record is not None else None,
        "contactId": record.pk if record is not None else None,
        "name": name,
        "templateName": e.template.name if e.template_id else None,
        "dispositionName": e.disposition.name if e.disposition_id else None,
        "fromAddress": e.from_address,
    }
