"""Global settings > Email accounts, in the console and the API: forwarding, SMTP and mass accounts; disabling;
the SMTP connection test; secrets are write-only."""

import pytest
from django.urls import reverse

from postdesk.core.models import AuditEvent
from postdesk.mailboxes.models import EmailAccount
from postdesk.mailboxes.services import find_forwarding_account
from postdesk.projects.tests.conftest import inline_error
from postdesk.testing.smtpsink import SmtpSink

pytestmark = pytest.mark.django_db

PASSWORD = "Smtp-Secret-Never-Shown-1"


def smtp_form(**changes):
    form = {
        "name": "support-out",
        "address": "support@acme.test",
        "display_name": "Acme Support",
        "is_default": "on",
        "enabled": "on",
        "host": "smtp.acme.test",
        "port": "587",
        "security": "starttls",
        "auth": "login",
        "username": "support@acme.test",
        "password": PASSWORD,
        "tls_verify": "on",
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def test_a_forwarding_account_shows_the_address_to_forward_to_and_its_project(
    supervisor_client, project, sam
):
    response = supervisor_client.post(
        reverse("account-create", args=["forwarding"]),
        {"name": "support-in", "address": "Support@ACME.test", "project": "101", "enabled": "on"},
    )
    assert response.status_code == 302
    account = EmailAccount.objects.get(name="support-in")
    assert account.address == "Support@acme.test" and account.project == project
    page = supervisor_client.get(reverse("accounts-list")).content.decode()
    assert "Forward mail to <strong>Support@acme.test</strong>" in page and "routed to project" in page
    edit = supervisor_client.get(reverse("account-edit", args=["support-in"])).content.decode()
    assert "/api/v1/inbound/support-in" in edit
    assert AuditEvent.objects.get(action="account.create").after["project"] == "101"


def test_disabling_forwarding_stops_the_routing_and_is_audited(supervisor_client, forwarding, sam):
    assert find_forwarding_account("support@acme.test") == forwarding
    supervisor_client.post(reverse("account-enable", args=["support-in"]), {"enabled": "0"})
    assert find_forwarding_account("support@acme.test") is None
    event = AuditEvent.objects.get(action="account.disable")
    assert (event.actor, event.before, event.after) == (sam, {"enabled": True}, {"enabled": False})
    supervisor_client.post(reverse("account-enable", args=["support-in"]), {"enabled": "1"})
    assert find_forwarding_account("support@acme.test") == forwarding


def test_a_forwarding_account_is_moved_to_another_project(supervisor_client, forwarding, other_project):
    supervisor_client.post(
        reverse("account-edit", args=["support-in"]),
        {"address": "support@acme.test", "project": "202", "enabled": "on"},
    )
    forwarding.refresh_from_db()
    assert forwarding.project == other_project
    event = AuditEvent.objects.get(action="account.update")
    assert event.before == {"project": "101"} and event.after == {"project": "202"}


def test_an_smtp_account_keeps_its_password_when_the_field_is_left_empty(supervisor_client, project):
    supervisor_client.post(reverse("account-create", args=["smtp"]), smtp_form())
    account = EmailAccount.objects.get(name="support-out")
    assert account.password == PASSWORD and account.is_default and account.port == 587
    page = supervisor_client.get(reverse("account-edit", args=["support-out"])).content.decode()
    assert PASSWORD not in page and "Stored (never shown)" in page
    supervisor_client.post(reverse("account-edit", args=["support-out"]), smtp_form(password="", port="2525"))
    account.refresh_from_db()
    assert account.password == PASSWORD and account.port == 2525
    for event in AuditEvent.objects.filter(object_type="emailaccount"):
        assert PASSWORD not in repr(event.before) + repr(event.after)
    assert AuditEvent.objects.get(action="account.create").after["password"] == "***"


def test_an_smtp_account_form_shows_the_refused_field_and_saves_nothing(supervisor_client, project):
    response = supervisor_client.post(reverse("account-create", args=["smtp"]), smtp_form(username=""))
    assert response.status_code == 422
    assert "needs a username" in inline_error(response, "id_username_error")
    assert 'value="smtp.acme.test"' in response.content.decode()  # what was typed stays
    assert PASSWORD not in response.content.decode()  # but a password is never sent back
    assert not EmailAccount.objects.exists()


def test_an_account_name_is_unique(supervisor_client, forwarding):
    response = supervisor_client.post(
        reverse("account-create", args=["smtp"]), smtp_form(name="support-in", auth="none")
    )
    assert response.status_code == 409 and "exists" in inline_error(response, "id_name_error")
    assert EmailAccount.objects.get(name="support-in").protocol == "forwarding"


def test_a_mass_email_account_is_created_with_its_signing_key(supervisor_client):
    response = supervisor_client.post(
        reverse("account-create", args=["mass"]),
        {"name": "news", "address": "news@acme.test", "domain": "ACME.test", "enabled": "on"},
    )
    assert response.status_code == 302
    account = EmailAccount.objects.get(name="news")
    assert account.domain == "acme.test" and account.dkim_public_key
    page = supervisor_client.get(reverse("account-edit", args=["news"])).content.decode()
    assert "acme.test" in page and "not verified yet" in page


def test_the_connection_test_reports_the_servers_answer(supervisor_client, sender_account):
    response = supervisor_client.post(reverse("account-test", args=["support-out"]), HTTP_HX_REQUEST="true")
    text = response.content.decode()
    assert response.status_code == 200 and "Connection OK." in text and "127.0.0.1" in text


def test_a_failed_connection_test_never_shows_the_password(supervisor_client, supervisor_api, project):
    with SmtpSink(users={"support@acme.test": "the-right-one"}) as sink:
        supervisor_client.post(
            reverse("account-create", args=["smtp"]),
            smtp_form(host="127.0.0.1", port=str(sink.port), security="none", tls_verify=None),
        )
        response = supervisor_client.post(
            reverse("account-test", args=["support-out"]), HTTP_HX_REQUEST="true"
        )
        assert "Connection failed." in response.content.decode()
        assert PASSWORD not in response.content.decode()
        answer = supervisor_api.post("/api/v1/accounts/support-out/test")
        assert answer.status_code == 200 and answer.json()["ok"] is False
        assert PASSWORD not in answer.content.decode()
        # with the right password it passes
        supervisor_api.patch("/api/v1/accounts/support-out", {"password": "the-right-one"})
        assert supervisor_api.post("/api/v1/accounts/support-out/test").json()["ok"] is True


def test_without_javascript_the_connection_test_answers_with_a_message(supervisor_client, sender_account):
    response = supervisor_client.post(reverse("account-test", args=["support-out"]), follow=True)
    assert "Connection test: Connected to 127.0.0.1" in response.content.decode()


def test_the_api_never_returns_a_secret(supervisor_api, project):
    created = supervisor_api.post(
        "/api/v1/accounts",
        {
            "name": "support-out",
            "protocol": "smtp",
            "address": "support@acme.test",
            "host": "smtp.acme.test",
            "username": "support@acme.test",
            "password": PASSWORD,
            "oauth_client_secret": "Client-Secret-Never-Shown",
            "default": True,
        },
    )
    assert created.status_code == 201
    assert created.json()["has_password"] is True and created.json()["default"] is True
    for response in (
        created,
        supervisor_api.get("/api/v1/accounts"),
        supervisor_api.get("/api/v1/accounts/support-out"),
        supervisor_api.patch("/api/v1/accounts/support-out", {"display_name": "Acme"}),
    ):
        assert PASSWORD not in response.content.decode()
        assert "Client-Secret-Never-Shown" not in response.content.decode()
    assert EmailAccount.objects.get(name="support-out").password == PASSWORD


def test_the_api_creates_a_forwarding_account_and_disables_it(supervisor_api, project):
    created = supervisor_api.post(
        "/api/v1/accounts",
        {"name": "support-in", "protocol": "forwarding", "address": "support@acme.test", "project": "101"},
    )
    assert created.status_code == 201
    assert created.json()["forward_to"] == "support@acme.test" and created.json()["project"] == "101"
    again = supervisor_api.post(
        "/api/v1/accounts",
        {"name": "support-in", "protocol": "forwarding", "address": "x@acme.test", "project": "101"},
    )
    assert again.status_code == 409 and again.json()["field"] == "name"
    disabled = supervisor_api.patch("/api/v1/accounts/support-in", {"enabled": False})
    assert disabled.json()["enabled"] is False
    assert find_forwarding_account("support@acme.test") is None
    changed = supervisor_api.patch("/api/v1/accounts/support-in", {"protocol": "smtp"})
    assert changed.status_code == 422 and "protocol" in changed.json()["detail"]
    unknown = supervisor_api.patch("/api/v1/accounts/support-in", {"project": "999"})
    assert unknown.status_code == 422 and unknown.json()["field"] == "project"


def test_only_smtp_accounts_have_a_connection_test(supervisor_api, forwarding):
    response = supervisor_api.post("/api/v1/accounts/support-in/test")
    assert response.status_code == 422 and response.json()["field"] == "protocol"
