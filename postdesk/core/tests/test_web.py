"""The web and API skeleton: login, areas by role, token auth, OpenAPI, health, CSRF, security headers."""

import pytest
from django.test import Client


@pytest.mark.django_db
def test_the_login_page_is_served_with_a_strict_content_security_policy():
    response = Client().get("/login/")
    assert response.status_code == 200
    assert b"Log in to postdesk" in response.content
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
def test_an_anonymous_visitor_is_sent_to_the_login_page():
    assert Client().get("/").url == "/login/"
    assert Client().get("/inbox/").url.startswith("/login/")


@pytest.mark.django_db
def test_agents_land_in_their_inbox_and_supervisors_in_the_console(alice, sam):
    for user, target in ((alice, "/inbox/"), (sam, "/supervisor/")):
        client = Client()
        response = client.post(
            "/login/", {"username": user.username, "password": f"{user.username}-password"}
        )
        assert response.status_code == 302
        assert client.get("/").url == target


@pytest.mark.django_db
def test_agents_get_403_in_the_supervisor_area(alice):
    client = Client()
    client.force_login(alice)
    assert client.get("/supervisor/").status_code == 403


@pytest.mark.django_db
def test_login_requires_the_csrf_token(alice):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/login/", {"username": "alice", "password": "alice-password"})
    assert response.status_code == 403


@pytest.mark.django_db
def test_the_api_wants_a_token(api, alice):
    assert api(None).get("/api/v1/projects/101").status_code == 401
    response = api(None).client.get("/api/v1/projects/101", HTTP_AUTHORIZATION="Bearer not-a-token")
    assert response.status_code == 401
    assert "detail" in response.json()


@pytest.mark.django_db
def test_openapi_and_docs_are_published():
    client = Client()
    spec = client.get("/api/openapi.json").json()
    assert spec["info"]["title"] == "postdesk API"
    assert "/api/v1/health" in spec["paths"]
    assert client.get("/api/docs").status_code == 200


@pytest.mark.django_db
def test_health_reports_the_database():
    body = Client().get("/health").json()
    assert body["status"] == "ok" and body["database"] in ("sqlite", "postgresql")


@pytest.mark.django_db
def test_a_token_is_stored_only_as_a_digest(alice):
    from postdesk.accounts.models import ApiToken
    from postdesk.accounts.services import create_token

    token = create_token(alice)
    row = ApiToken.objects.get(user=alice)
    assert token not in (row.digest, row.prefix) and len(row.digest) == 64
