"""Mass-email sending domains: the DKIM key pair and the DNS records to publish (verification comes with the
mass-email work)."""

from __future__ import annotations

from postdesk.core import clock


def ensure_dkim_key(account) -> None:
    from postdesk.outbound.dkim import generate_dkim_key

    private_pem, record = generate_dkim_key()
    account.dkim_private_key = private_pem.decode() if isinstance(private_pem, bytes) else private_pem
    account.dkim_public_key = record.split("p=", 1)[1].strip().rstrip(";")
    account.dkim_selector = account.dkim_selector or f"pd{clock.now():%Y%m}"
