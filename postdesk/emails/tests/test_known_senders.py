"""The known-sender table behind the email log's sender filter: kept by database triggers through every way an email
is written, renamed or deleted (bulk SQL included), and the filter gives the same emails whether the term is rare
(address list) or common (checked while walking the date index)."""

import pytest
from django.db import connection

from postdesk.emails import search
from postdesk.emails.models import Email, KnownSender
from postdesk.testing.factories import inbound_email

pytestmark = pytest.mark.django_db


def known() -> set[tuple[str, str]]:
    return set(KnownSender.objects.values_list("address", "name"))


def trigram_hits(term: str) -> set[str]:
    """SQLite: what the sender trigram index finds (it must agree with the table it indexes)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT s.address FROM {search.SENDER_TRGM} t JOIN {search.SENDER_TABLE} s ON s.id = t.rowid "
            f"WHERE {search.SENDER_TRGM} MATCH %s",
            ['"' + term + '"'],
        )
        return {row[0] for row in cursor.fetchall()}


def test_inserts_renames_and_deletes_keep_the_table(project):
    first = inbound_email(project, sender="ada@example.com")
    second = inbound_email(project, sender="ada@example.com")
    other = inbound_email(project, sender="bob@example.org")
    assert known() == {("ada@example.com", "Carla Customer"), ("bob@example.org", "Carla Customer")}

    first.delete()  # ada still has an email with that name
    assert ("ada@example.com", "Carla Customer") in known()
    Email.objects.filter(pk=other.pk).update(from_name="Bob Builder")
    assert ("bob@example.org", "Bob Builder") in known()
    assert ("bob@example.org", "Carla Customer") not in known()
    Email.objects.filter(pk=second.pk).delete()
    assert known() == {("bob@example.org", "Bob Builder")}


def test_rows_written_with_plain_sql_are_known_too(project):
    template = inbound_email(project, sender="template@example.com")
    columns = [f.column for f in Email._meta.concrete_fields if f.column != "id"]
    copied = [{"from_address": "%s", "from_name": "%s"}.get(c, connection.ops.quote_name(c)) for c in columns]
    with connection.cursor() as cursor:  # a copy of the row in plain SQL, with another sender
        cursor.execute(
            f"INSERT INTO emails_email ({', '.join(map(connection.ops.quote_name, columns))}) "
            f"SELECT {', '.join(copied)} FROM emails_email WHERE id = %s",
            ["bulk@example.net", "Bulk Sender", template.pk],
        )
    assert ("bulk@example.net", "Bulk Sender") in known()
    assert search.sender_matches("bulk@exa") == (["bulk@example.net"], [])


@pytest.mark.skipif("connection.vendor != 'sqlite'")
def test_the_sqlite_trigram_index_follows_the_table(project):
    emails = [inbound_email(project, sender=f"trigram{i}@example.com") for i in range(3)]
    assert trigram_hits("trigram") == {f"trigram{i}@example.com" for i in range(3)}
    emails[1].delete()
    Email.objects.filter(pk=emails[2].pk).update(from_address="renamed@example.com")
    assert trigram_hits("trigram") == {"trigram0@example.com"}
    assert trigram_hits("renamed") == {"renamed@example.com"}
    with connection.cursor() as cursor:  # raises if the external-content index disagrees with its table
        cursor.execute(f"INSERT INTO {search.SENDER_TRGM}({search.SENDER_TRGM}, rank) VALUES ('integrity-check', 1)")


def test_sender_matches_by_address_or_name_and_literal_wildcards(project):
    inbound_email(project, sender="anna.kovacs@example.hu")
    email = inbound_email(project, sender="x_y%z@example.com")
    Email.objects.filter(pk=email.pk).update(from_name="Zoltan Pelda")
    assert search.sender_matches("KOVACS") == (["anna.kovacs@example.hu"], [])
    # through the name only: that name's emails, not every email of the address
    assert search.sender_matches("Pelda") == ([], [("x_y%z@example.com", "Zoltan Pelda")])
    assert search.sender_matches("_y%") == (["x_y%z@example.com"], [])
    assert search.sender_matches("y%") == (["x_y%z@example.com"], [])  # short terms: a scan, same answer
    assert search.sender_matches("nobody") == ([], [])
    assert search.sender_matches("example")[0] == ["anna.kovacs@example.hu", "x_y%z@example.com"]
    assert search.sender_matches("example", cap=1) is None  # too common: the caller walks the index instead


@pytest.mark.parametrize("cap", [1000, 0])
def test_the_filter_gives_the_same_emails_rare_or_common(api, sam, project, monkeypatch, cap):
    monkeypatch.setattr(search, "SENDER_CAP", cap)
    monkeypatch.setattr(search.sender_matches, "__defaults__", (cap,))
    ada = inbound_email(project, sender="ada@example.com")
    named = inbound_email(project, sender="someone@example.org")
    Email.objects.filter(pk=named.pk).update(from_name="Ada Lovelace")
    inbound_email(project, sender="someone@example.org")  # same address, another name: not a match
    inbound_email(project, sender="bob@example.org")
    response = api(sam).get("/api/v1/emails", sender="ada", include_ticketed="true")
    assert response.status_code == 200
    assert [item["id"] for item in response.json()["items"]] == [named.pk, ada.pk]
    second = api(sam).get("/api/v1/emails", sender="ada", include_ticketed="true", limit=1)
    assert [item["id"] for item in second.json()["items"]] == [named.pk]
    cursor = second.json()["next_cursor"]
    rest = api(sam).get("/api/v1/emails", sender="ada", include_ticketed="true", limit=1, cursor=cursor)
    assert [item["id"] for item in rest.json()["items"]] == [ada.pk]
