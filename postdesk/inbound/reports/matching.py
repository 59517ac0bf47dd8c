"""What ties a report to the email we sent: the keys to look it up by, strongest first.

* ``postdesk_ids`` - our own ``X-Postdesk-Id`` header, when the returned original kept it;
* ``message_ids`` - the original's Message-ID (and, for auto-replies, what the reply says it answers);
* ``addresses`` - where the report was delivered (our VERP return path, e.g. ``bounces+<token>@...``) and the
  Return-Path of the returned original.
"""

from __future__ import annotations

import email.message

from .mime import addresses_in, header_values
from .model import Report
from .original import normalize_message_id

_DELIVERY_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To")


def correlation_keys(report: Report, msg: email.message.Message | None = None) -> dict[str, list[str]]:
    """Lookup keys for ``report`` (``msg``, the report message itself, adds where it was delivered)."""
    postdesk_ids = (
        [report.original_headers["x-postdesk-id"].strip()]
        if report.original_headers.get("x-postdesk-id")
        else []
    )
    message_ids: list[str] = []
    addresses: list[str] = []

    def add(target: list[str], value: str | None) -> None:
        if value and value not in target:
            target.append(value)

    add(message_ids, report.original_message_id)
    add(message_ids, normalize_message_id(report.original_headers.get("message-id")))
    if msg is not None:
        if report.type == "autoreply":
            for name in ("In-Reply-To", "References"):
                for value in header_values(msg, name):
                    for token in value.split()[:50]:
                        add(message_ids, normalize_message_id(token))
        for name in _DELIVERY_HEADERS:
            for value in header_values(msg, name):
                for address in addresses_in(value):
                    add(addresses, address)
    for address in addresses_in(report.original_headers.get("return-path")):
        add(addresses, address)
    return {"postdesk_ids": postdesk_ids, "message_ids": message_ids, "addresses": addresses}
