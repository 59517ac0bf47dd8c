"""Webhook targets must not reach into the operator's network: targets on private, loopback, link-local or otherwise
non-public addresses are refused unless POSTDESK_ALLOW_PRIVATE_WEBHOOKS=1. Checked when an endpoint is registered
(for literal addresses and names that resolve) and again for every delivery (DNS can change)."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

from postdesk.core.errors import Invalid


def is_public_address(ip: str) -> bool:
    """A globally routable unicast address (IPv4-mapped IPv6 judged as the IPv4 address)."""
    address = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def check_webhook_url(url: str, field: str = "url", *, resolve: bool = True) -> str:
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid("a webhook URL must be http:// or https:// with a host", field=field)
    if parts.username or parts.password:
        raise Invalid("credentials in webhook URLs are not allowed; use the signing secret", field=field)
    if settings.CONFIG.allow_private_webhooks:
        return url
    host = parts.hostname
    try:
        ipaddress.ip_address(host)
        addresses = [host]
    except ValueError:
        if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
            raise Invalid(
                f"{host} is a private name (set POSTDESK_ALLOW_PRIVATE_WEBHOOKS=1 to allow)", field=field
            )
        addresses = resolve_host(host) if resolve else []
    for ip in addresses:
        if not is_public_address(ip):
            raise Invalid(
                f"{host} resolves to the non-public address {ip} (set POSTDESK_ALLOW_PRIVATE_WEBHOOKS=1 to allow)",
                field=field,
            )
    return url


def resolve_host(host: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return []
    return sorted({info[4][0] for info in infos})
