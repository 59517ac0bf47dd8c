"""No stored secret (SMTP password, OAuth tokens, API token, webhook secret) is readable in the database."""

import pytest
from django.db import connection

from postdesk.accounts.services import create_token
from postdesk.integrations.services import upsert_webhook
from postdesk.mailboxes.services import upsert_account

SECRETS = {
    "password": "Smtp-Pa55word-never-stored-plain",
    "oauth_client_secret": "client-secret-never-stored-plain",
}


@pytest.mark.django_db(transaction=True)
def test_no_secret_is_readable_in_the_database(project, alice):
    account, _ = upsert_account(
        {
            "name": "out",
            "protocol": "smtp",
            "address": "out@acme.test",
            "host": "smtp.acme.test",
            "username": "out@acme.test",
            **SECRETS,
        }
    )
    account.oauth_access_token = "access-token-never-stored-plain"
    account.oauth_refresh_token = "refresh-token-never-stored-plain"
    account.save()
    token = create_token(alice)
    upsert_webhook(
        project, url="https://crm.example.com/hook", events=["email"], secret="webhook-secret-never-plain"
    )
    mass, _ = upsert_account(
        {"name": "news", "protocol": "mass", "address": "news@acme.test", "domain": "acme.test"}
    )
    private_key_line = mass.dkim_private_key.splitlines()[1]

    plain = [
        *SECRETS.values(),
        "access-token-never-stored-plain",
        "refresh-token-never-stored-plain",
        token,
        "webhook-secret-never-plain",
        private_key_line,
    ]
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        blob = open(connection.settings_dict["NAME"], "rb").read()
        for suffix in ("-wal", "-journal"):
            try:
                blob += open(connection.settings_dict["NAME"] + suffix, "rb").read()
            except FileNotFoundError:
                pass
        assert b"out@acme.test" in blob  # the check reads the real file
        for secret in plain:
            assert secret.encode() not in blob, secret
    else:
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM mailboxes_emailaccount")
            rows = repr(cursor.fetchall())
            cursor.execute("SELECT * FROM accounts_apitoken")
            rows += repr(cursor.fetchall())
            cursor.execute("SELECT * FROM integrations_webhookendpoint")
            rows += repr(cursor.fetchall())
        for secret in plain:
            assert secret not in rows, secret
    # ... while the application still reads them
    account.refresh_from_db()
    assert account.password == SECRETS["password"]
    assert account.oauth_refresh_token == "refresh-token-never-stored-plain"
