"""Retention test helpers: a project with automatic deletion on, mail received and handled at chosen moments."""

from __future__ import annotations

import datetime as dt

import pytest

from postdesk.core import clock

T0 = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)


def day(n: float, start: dt.datetime = T0) -> dt.datetime:
    return start + dt.timedelta(days=n)


@pytest.fixture
def retention_days(project):
    """Automatic deletion after 30 days in project 101 (a test may set another value)."""
    from postdesk.projects.services import update_settings

    def set_days(days):
        update_settings(project, {"auto_delete_days": days})
        project.refresh_from_db()
        return project

    set_days(30)
    return set_days


def receive_at(account, moment, **message):
    """A message through the real intake path, received at `moment`."""
    from postdesk.testing.factories import raw_message, receive

    with clock.frozen(moment):
        email = receive(account, message.pop("raw", None) or raw_message(**message))
    assert email is not None
    return email


def at(moment, fn, *args, **kwargs):
    with clock.frozen(moment):
        return fn(*args, **kwargs)


def run_retention(moment, **kwargs):
    from postdesk.retention import services

    return services.run(moment, **kwargs)


def found(words: str) -> set[int]:
    """Ids the full-text search finds for these words."""
    from django.db import connection

    from postdesk.emails import search

    sql, params = search.matching_ids_sql(words)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}


def with_attachment(
    *,
    subject: str,
    body: str,
    filename: str,
    content: bytes,
    sender: str = "customer@example.com",
    name: str = "Carla Customer",
    message_id: str | None = None,
) -> bytes:
    """A multipart message with a text part and one attachment (base64), plain ASCII headers."""
    import base64
    import uuid

    message_id = message_id or f"<att-{uuid.uuid4().hex}@example.com>"
    encoded = base64.encodebytes(content).decode().replace("\n", "\r\n")
    return (
        f"From: {name} <{sender}>\r\n"
        "To: support@acme.test\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: {message_id}\r\n"
        "Date: Mon, 02 Mar 2026 09:30:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b1"\r\n'
        "\r\n"
        "--b1\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        f"{body}\r\n"
        "--b1\r\n"
        f'Content-Type: application/octet-stream; name="{filename}"\r\n'
        f'Content-Disposition: attachment; filename="{filename}"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
        f"{encoded}"
        "--b1--\r\n"
    ).encode()
