"""The email log API: filters (each alone and combined), 'also related to tickets', keyset pagination, detail, raw."""

import datetime as dt

import pytest

from postdesk.core import clock
from postdesk.testing.factories import raw_message, receive

pytestmark = pytest.mark.django_db


@pytest.fixture
def mail(forwarding, alice):
    from postdesk.tickets.services import assign_email

    clock.set_now(dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC))
    out = {}
    out["anna"] = receive(forwarding, raw_message(sender="anna.kovacs@example.hu", name="Kovács Anna",
                                                  subject="Számla kérdés", body="Jó napot, a számlámról kérdeznék "
                                                  "valamit, mert kétszer terheltek meg."))
    clock.set_now(dt.datetime(2026, 11, 5, 9, 0, tzinfo=dt.UTC))
    out["bob"] = receive(forwarding, raw_message(sender="bob@builder.example.com", name="Bob Builder",
                                                 subject="Broken kettle", body="My kettle arrived broken, "
                                                 "please send a new one or refund me."))
    clock.set_now(dt.datetime(2026, 11, 9, 9, 0, tzinfo=dt.UTC))
    out["carl"] = receive(forwarding, raw_message(sender="carl@example.org", subject="Kettle again",
                                                  body="The kettle you sent is broken too, I want a refund."))
    assign_email(out["carl"], title="Kettle", by=alice)
    clock.set_now(None)
    return out


def ids(response):
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["items"]]


def test_the_log_hides_emails_on_tickets_unless_asked(api, sam, mail):
    client = api(sam)
    assert ids(client.get("/api/v1/emails")) == [mail["bob"].pk, mail["anna"].pk]
    assert ids(client.get("/api/v1/emails", include_ticketed="true")) == [mail["carl"].pk, mail["bob"].pk,
                                                                          mail["anna"].pk]


@pytest.mark.parametrize("params, expected", [
    ({"sender": "kovacs"}, ["anna"]),
    ({"sender": "Builder"}, ["bob"]),
    ({"recipient": "support@acme"}, ["carl", "bob", "anna"]),
    ({"subject": "kettle"}, ["carl", "bob"]),
    ({"language": "hu"}, ["anna"]),
    ({"queue": "English"}, ["carl", "bob"]),
    ({"direction": "in", "date_from": "2026-11-04T00:00:00Z", "date_to": "2026-11-10T00:00:00Z"}, ["carl", "bob"]),
    ({"direction": "in", "date_from": "2026-11-04T00:00:00Z", "sender": "example", "language": "en",
      "queue": "English"}, ["carl", "bob"]),
    ({"q": "refund"}, ["carl", "bob"]),
    ({"q": "refund", "sender": "carl"}, ["carl"]),
])
def test_filters_alone_and_combined(api, sam, mail, params, expected):
    got = ids(api(sam).get("/api/v1/emails", include_ticketed="true", **params))
    assert got == [mail[name].pk for name in expected]


def test_keyset_pages_cover_everything_once(api, sam, mail):
    client = api(sam)
    seen, cursor = [], None
    while True:
        params = {"include_ticketed": "true", "limit": 1}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/emails", **params).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [mail["carl"].pk, mail["bob"].pk, mail["anna"].pk]


def test_bad_parameters_get_4xx_naming_the_field(api, sam, mail):
    client = api(sam)
    for params, field in (({"limit": 501}, "limit"), ({"direction": "sideways"}, "direction"),
                          ({"cursor": "%%%"}, "cursor"), ({"date_from": "yesterday"}, "date_from")):
        response = client.get("/api/v1/emails", **params)
        assert 400 <= response.status_code < 500 and field in response.json()["detail"]


def test_one_email_with_its_content_and_raw(api, sam, mail):
    client = api(sam)
    body = client.get(f"/api/v1/emails/{mail['bob'].pk}").json()
    assert body["text"].startswith("My kettle arrived broken") and body["sender"] == "bob@builder.example.com"
    raw = client.get(f"/api/v1/emails/{mail['bob'].pk}/raw")
    assert raw["Content-Type"] == "message/rfc822" and raw.content == bytes(mail["bob"].raw.data)


def test_agents_see_only_their_queues_and_tickets(api, bob, charlie, other_project, mail):
    # bob is in the Magyar and English queues (and Default); charlie is in another project
    assert set(ids(api(bob).get("/api/v1/emails"))) == {mail["bob"].pk, mail["anna"].pk}
    assert ids(api(charlie).get("/api/v1/emails")) == []
