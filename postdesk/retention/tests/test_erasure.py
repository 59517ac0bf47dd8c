"""Deleting means gone: after a run, no byte of the deleted message is left in the data directory (SQLite: database,
write-ahead log and shared-memory files included) or in any table row (PostgreSQL)."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from postdesk.emails.models import Email, Kind, RawMessage
from postdesk.retention.tests.conftest import T0, at, day, found, receive_at, run_retention, with_attachment
from postdesk.tickets import services as tickets

pytestmark = pytest.mark.django_db(transaction=True)


def data_directory_bytes() -> dict[str, bytes]:
    files = {}
    for path in Path(settings.CONFIG.data_dir).rglob("*"):
        if path.is_file():
            files[str(path)] = path.read_bytes()
    return files


def where(needle: bytes, files: dict[str, bytes]) -> list[str]:
    return [name for name, blob in files.items() if needle in blob]


def table_rows_containing(text: str) -> list[str]:
    """PostgreSQL: every table of the schema, each row as text (bytea as hex), searched for the text."""
    hexed = text.encode().hex()
    hits = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        for (table,) in cursor.fetchall():
            name = connection.ops.quote_name(table)
            cursor.execute(
                f"SELECT count(*) FROM {name} t WHERE t::text ILIKE %s OR t::text ILIKE %s",
                [f"%{text}%", f"%{hexed}%"],
            )
            if cursor.fetchone()[0]:
                hits.append(table)
    return hits


def fts_terms() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.fts_terms USING fts5vocab(main, emails_fts, 'row')"
        )
        cursor.execute("SELECT term FROM temp.fts_terms")
        terms = {row[0] for row in cursor.fetchall()}
        cursor.execute("DROP TABLE temp.fts_terms")
    return terms


@pytest.fixture
def automatic_response(project, sender_account):
    from postdesk.projects.services import update_settings, upsert_template

    upsert_template(
        project, "ack", {"subject": "Re: {{ subject }}", "body": "We got your message: {{ subject }}"}
    )
    update_settings(project, {"auto_response_template": "ack"})


def receive_as_the_listener_does(account, moment, raw: bytes):
    """The listener's path: on SQLite through the intake spool (its own file in the data directory), then moved into
    the database and processed by the worker; on PostgreSQL straight into the database."""
    from postdesk.core import clock
    from postdesk.inbound import processing, spool
    from postdesk.inbound.intake import Delivery
    from postdesk.inbound.models import IncomingMessage

    if not spool.enabled():
        return receive_at(account, moment, raw=raw)
    with clock.frozen(moment):
        delivery = Delivery(
            raw=raw, mail_from="carla@example.com", rcpt_to=[account.address], accounts=[account]
        )
        assert spool.put([delivery], lambda m: m.isoformat())[0] is not None
        ids = processing.process_spooled()
    return IncomingMessage.objects.get(pk=ids[0]).email


def address_index_finds(text: str) -> set[int]:
    from postdesk.emails import search

    with connection.cursor() as cursor:
        table = search.SQLITE_ADDRESS_TABLE
        cursor.execute(f"SELECT rowid FROM {table} WHERE {table} MATCH %s", [f'sender : "{text}"'])
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.parametrize("vacuum", [None, True], ids=["as-the-job-does", "with-vacuum"])
def test_no_byte_of_a_deleted_message_is_left_in_the_data_directory(
    forwarding, alice, automatic_response, retention_days, vacuum
):
    marker = f"zq{uuid.uuid4().hex[:14]}"  # one word for the full-text index, unique to this test
    control = f"zk{uuid.uuid4().hex[:14]}"
    # large enough to live in overflow pages (SQLite) and TOAST (PostgreSQL)
    attached = f"attached {marker} content ".encode() + bytes(range(256)) * 800 + marker.encode()
    raw = with_attachment(
        subject=f"Order {marker}",
        body=f"My words {marker} and more words.",
        name=f"Carla {marker}",
        sender="carla@example.com",
        filename=f"{marker}.txt",
        content=attached,
    )
    email = receive_as_the_listener_does(forwarding, T0, raw)
    ticket = at(T0, tickets.assign_email, email, by=alice)  # the ticket's title is the subject
    at(day(1), tickets.close_ticket, ticket, by=alice)
    response = Email.objects.get(kind=Kind.AUTO_RESPONSE, reply_to_email=email)
    assert marker in response.subject and response.raw_id and response.status == "sent"
    kept = receive_at(forwarding, day(20), subject=f"Other {control}", body=f"Kept {control} words.")
    assert found(marker) == {email.pk, response.pk}
    b64 = base64.b64encode(attached)
    if connection.vendor == "sqlite":
        assert address_index_finds(marker) == {email.pk}
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        before = where(marker.encode(), data_directory_bytes())
        assert any(name.endswith("test.sqlite3") for name in before)  # the search reads the real files
        assert any("spool.sqlite3" in name for name in before)  # the message passed through the spool
    else:
        assert table_rows_containing(marker)

    result = run_retention(day(31), vacuum=vacuum)

    assert result.totals()["emails"] == 2 and result.totals()["tickets"] == 1
    assert result.totals()["attachments"] == 1 and result.totals()["raw_messages"] == 2
    kept_response = Email.objects.get(kind=Kind.AUTO_RESPONSE, reply_to_email=kept)
    assert found(marker) == set() and found(control) == {kept.pk, kept_response.pk}
    assert not Email.objects.filter(pk__in=[email.pk, response.pk]).exists()
    assert RawMessage.objects.count() == 2  # the kept email and its automatic response
    if connection.vendor == "sqlite":
        assert result.maintenance.get("checkpoint") == "truncated", result.maintenance
        assert address_index_finds(marker) == set()
        files = data_directory_bytes()
        assert where(marker.encode(), files) == []
        assert where(b64, files) == []
        assert where(control.encode(), files)  # kept mail is still there, in the same files
        terms = fts_terms()
        assert marker not in terms and control in terms
    else:
        assert table_rows_containing(marker) == []
        assert table_rows_containing(control)
        assert "vacuum_seconds" in result.maintenance


def test_the_full_text_indexes_stay_sound_after_deletions(forwarding, project, retention_days):
    """A contentless FTS5 index is damaged by a delete with other values than those indexed; mail that was never
    indexed (mass email) is left alone."""
    from postdesk.emails.models import Direction, Status

    indexed = [receive_at(forwarding, day(i), subject=f"Topic {i}", body=f"walnut{i} text") for i in range(6)]
    never_indexed = Email.objects.create(
        project=project,
        direction=Direction.OUT,
        kind=Kind.MASS,
        status=Status.SENT,
        date=T0,
        from_address="news@acme.test",
        to=["mia@example.com"],
        subject="News",
    )
    run_retention(day(33))
    assert not Email.objects.filter(pk=never_indexed.pk).exists()
    assert [bool(found(f"walnut{i}")) for i in range(6)] == [False] * 4 + [True] * 2
    assert {e.pk for e in indexed[4:]} == set(Email.objects.values_list("id", flat=True))
    if connection.vendor == "sqlite":
        ours = {e.pk for e in indexed} | {never_indexed.pk}
        with connection.cursor() as cursor:
            for table in ("emails_fts", "emails_address_trgm"):
                cursor.execute(f"INSERT INTO {table}({table}) VALUES ('integrity-check')")
                cursor.execute(f"SELECT id FROM {table}_docsize")
                assert {row[0] for row in cursor.fetchall()} & ours == {e.pk for e in indexed[4:]}, table


def test_a_message_received_again_after_its_deletion_is_stored_again(forwarding, retention_days):
    """The intake spool remembers the messages it has seen (to store each once); retention makes it forget the
    deleted ones."""
    from postdesk.testing.factories import raw_message

    raw = raw_message(subject="Same again", message_id="<same-again@example.com>")
    first = receive_as_the_listener_does(forwarding, T0, raw)
    run_retention(day(31))
    assert not Email.objects.filter(pk=first.pk).exists()
    again = receive_as_the_listener_does(forwarding, day(32), raw)
    assert again is not None and again.pk != first.pk and again.subject == "Same again"
