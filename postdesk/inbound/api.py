"""POST /api/v1/inbound/{account}: a raw message for a forwarding account, for providers that post mail over HTTP.
Same durability rule as SMTP: 202 only after the bytes are committed; 503 on a storage error."""

from __future__ import annotations

from django.conf import settings
from django.db import DatabaseError
from ninja import Router, Schema, Status

from postdesk.accounts.access import require_supervisor
from postdesk.core.errors import DomainError, Invalid, NotFound
from postdesk.inbound.intake import Delivery, store_now
from postdesk.mailboxes.models import EmailAccount, Protocol

router = Router(tags=["inbound"])


class Accepted(Schema):
    ids: list[int]
    duplicate: bool


class PayloadTooLarge(DomainError):
    status = 413


class StorageUnavailable(DomainError):
    status = 503


@router.post(
    "/inbound/{account}",
    response={202: Accepted},
    summary="Receive a raw message (message/rfc822 body)",
    openapi_extra={
        "requestBody": {"content": {"message/rfc822": {"schema": {"type": "string", "format": "binary"}}}}
    },
)
def receive(request, account: str, mail_from: str = "", rcpt_to: str = ""):
    require_supervisor(request.auth)
    row = EmailAccount.objects.filter(
        name=account, protocol=Protocol.FORWARDING, enabled=True, project__isnull=False
    ).first()
    if row is None:
        raise NotFound(f"no enabled forwarding account named {account!r}", field="account")
    raw = request.body
    if not raw:
        raise Invalid("the body must be the raw message (Content-Type: message/rfc822)", field="body")
    if len(raw) > settings.CONFIG.smtp_max_message_bytes:
        raise PayloadTooLarge(
            f"message larger than {settings.CONFIG.smtp_max_message_bytes} bytes", field="body"
        )
    if b"\n" in raw and b"\r\n" not in raw:
        raw = raw.replace(
            b"\n", b"\r\n"
        )  # HTTP clients often post LF-only files; SMTP smuggling does not apply here
    delivery = Delivery(
        raw=raw,
        mail_from=mail_from,
        rcpt_to=[rcpt_to or row.address],
        accounts=[row],
        protocol="http",
        peer=request.META.get("REMOTE_ADDR", ""),
    )
    try:
        stored = store_now(delivery)
    except DatabaseError:
        raise StorageUnavailable("storage unavailable, try again")
    return Status(202, {"ids": stored.ids, "duplicate": not stored.ids})
