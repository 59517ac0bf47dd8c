"""The projects API (supervisors): the same writes as the console, through the same services."""

import pytest

from postdesk.core.models import AuditEvent
from postdesk.projects.models import AgentQueueSkill, Project

pytestmark = pytest.mark.django_db


def test_a_project_is_read_with_settings_queues_templates_and_ticket_types(
    supervisor_api, project, templates, sender_account
):
    body = supervisor_api.get("/api/v1/projects/101").json()
    assert body["key"] == "101" and body["email"]["list_size"] == 50 and body["email"]["email_queue"] is True
    assert [q["name"] for q in body["queues"]] == ["Default", "English", "Magyar"]
    assert body["queues"][1]["agents"] == {"alice": 5, "bob": 2}
    assert {t["name"] for t in body["templates"]} == {"ack", "thanks"}
    assert body["ticket_types"] == [{"label": "Complaint", "export_value": "COMPLAINT"}]
    assert body["sender_accounts"] == ["support-out"] and body["default_sender_account"] == "support-out"


def test_projects_are_listed_and_created(supervisor_api, project, sam):
    assert supervisor_api.get("/api/v1/projects").json() == [{"key": "101", "name": "Acme Care"}]
    response = supervisor_api.post("/api/v1/projects", {"key": "303", "name": "Gamma"})
    assert response.status_code == 201 and response.json()["queues"][0]["is_default"]
    assert supervisor_api.post("/api/v1/projects", {"key": "303", "name": "Again"}).status_code == 409
    assert AuditEvent.objects.get(action="project.create", actor=sam).after == {"key": "303", "name": "Gamma"}


def test_settings_are_patched_and_audited(supervisor_api, project, templates, sam):
    response = supervisor_api.patch(
        "/api/v1/projects/101/settings",
        {"list_size": 80, "auto_response_template": "ack", "auto_delete_days": 30},
    )
    assert response.status_code == 200
    assert response.json()["email"]["auto_response_template"] == "ack"
    event = AuditEvent.objects.get(action="project.settings", actor=sam)
    assert event.before == {"list_size": 50, "auto_delete_days": None, "auto_response_template": None}
    # null clears; unmentioned settings stay
    supervisor_api.patch(
        "/api/v1/projects/101/settings", {"auto_response_template": None, "auto_delete_days": None}
    )
    project.refresh_from_db()
    assert (
        project.auto_response_template is None
        and project.auto_delete_days is None
        and project.list_size == 80
    )


@pytest.mark.parametrize("value", ["50", True, 12.5])
def test_settings_take_json_numbers_only(supervisor_api, project, value):
    response = supervisor_api.patch("/api/v1/projects/101/settings", {"list_size": value})
    assert response.status_code == 422 and "list_size" in response.json()["detail"]


def test_sender_accounts_are_set_with_the_default(supervisor_api, project, sender_account):
    from postdesk.mailboxes.services import upsert_account

    upsert_account(
        {"name": "b-out", "protocol": "smtp", "address": "b@acme.test", "host": "h.acme.test", "auth": "none"}
    )
    response = supervisor_api.put(
        "/api/v1/projects/101/sender-accounts",
        {"sender_accounts": ["support-out", "b-out"], "default_sender_account": "b-out"},
    )
    assert response.status_code == 200
    assert response.json()["sender_accounts"] == ["b-out", "support-out"]
    assert response.json()["default_sender_account"] == "b-out"
    unknown = supervisor_api.put("/api/v1/projects/101/sender-accounts", {"sender_accounts": ["nope"]})
    assert unknown.status_code == 422 and unknown.json()["field"] == "sender_accounts.0"


def test_queues_are_created_renamed_and_deleted(supervisor_api, project):
    created = supervisor_api.post("/api/v1/projects/101/queues", {"name": "Deutsch", "language": "DE"})
    assert created.status_code == 201 and created.json()["language"] == "de"
    renamed = supervisor_api.patch("/api/v1/projects/101/queues/Deutsch", {"name": "German"})
    assert renamed.json()["name"] == "German"
    assert supervisor_api.delete("/api/v1/projects/101/queues/German").status_code == 204
    assert supervisor_api.delete("/api/v1/projects/101/queues/German").status_code == 404
    default = supervisor_api.delete("/api/v1/projects/101/queues/Default")
    assert default.status_code == 409 and default.json()["field"] == "queue"
    assert supervisor_api.patch("/api/v1/projects/101/queues/Default", {"name": "General"}).status_code == 200
    assert project.default_queue.name == "General"


def test_an_agents_queues_are_set_exactly(supervisor_api, project, charlie):
    response = supervisor_api.put(
        "/api/v1/projects/101/agents/charlie", {"queues": {"Magyar": 4, "Default": 1}}
    )
    assert response.status_code == 200
    magyar = next(q for q in response.json()["queues"] if q["name"] == "Magyar")
    assert magyar["agents"]["charlie"] == 4
    supervisor_api.put("/api/v1/projects/101/agents/charlie", {"queues": {"Magyar": 4}})
    assert list(AgentQueueSkill.objects.filter(user=charlie).values_list("queue__name", flat=True)) == [
        "Magyar"
    ]
    missing = supervisor_api.put("/api/v1/projects/101/agents/charlie", {"queues": {"Klingon": 3}})
    assert missing.status_code == 422 and missing.json()["field"] == "queues.Klingon"
    assert supervisor_api.put("/api/v1/projects/101/agents/nobody", {"queues": {}}).status_code == 404


def test_one_matrix_cell_is_set_and_cleared(supervisor_api, project, charlie):
    response = supervisor_api.put("/api/v1/projects/101/queues/English/agents/charlie", {"level": 6})
    assert response.json()["agents"]["charlie"] == 6
    response = supervisor_api.put("/api/v1/projects/101/queues/English/agents/charlie", {"level": None})
    assert "charlie" not in response.json()["agents"]


def test_templates_are_put_and_deleted(supervisor_api, project):
    response = supervisor_api.put(
        "/api/v1/projects/101/templates/thanks", {"subject": "Re: x", "body": "Thanks", "cc": ["a@acme.test"]}
    )
    assert response.status_code == 201 and response.json()["cc"] == ["a@acme.test"]
    response = supervisor_api.put(
        "/api/v1/projects/101/templates/thanks", {"subject": "Re: y", "visible_to_agents": False}
    )
    assert response.status_code == 200 and response.json()["visible_to_agents"] is False
    assert [t["subject"] for t in supervisor_api.get("/api/v1/projects/101/templates").json()] == ["Re: y"]
    assert supervisor_api.delete("/api/v1/projects/101/templates/thanks").status_code == 204
    assert not project.templates.exists()


def test_ticket_types_are_added_changed_and_deleted(supervisor_api, project):
    assert (
        supervisor_api.post(
            "/api/v1/projects/101/ticket-types", {"label": "Complaint", "export_value": "COMPLAINT"}
        ).status_code
        == 201
    )
    again = supervisor_api.post(
        "/api/v1/projects/101/ticket-types", {"label": "Other", "export_value": "COMPLAINT"}
    )
    assert again.status_code == 409 and again.json()["field"] == "export_value"
    changed = supervisor_api.patch("/api/v1/projects/101/ticket-types/COMPLAINT", {"export_value": "COMPL"})
    assert changed.json() == {"label": "Complaint", "export_value": "COMPL"}
    assert supervisor_api.get("/api/v1/projects/101/ticket-types").json() == [changed.json()]
    assert supervisor_api.delete("/api/v1/projects/101/ticket-types/COMPL").status_code == 204


def test_a_clone_has_the_settings_and_no_mail(supervisor_api, project, templates):
    response = supervisor_api.post("/api/v1/projects/101/clone", {"key": "102", "name": "Acme Two"})
    assert response.status_code == 201
    body = response.json()
    assert body["key"] == "102" and [q["name"] for q in body["queues"]] == ["Default", "English", "Magyar"]
    assert {t["name"] for t in body["templates"]} == {"ack", "thanks"}
    assert Project.objects.get(key="102").tickets.count() == 0


def test_the_audit_log_is_paged_newest_first(supervisor_api, project):
    for size in (60, 70, 80):
        supervisor_api.patch("/api/v1/projects/101/settings", {"list_size": size})
    first = supervisor_api.get("/api/v1/audit", project="101", action="project.settings", limit=2).json()
    assert [e["after"]["list_size"] for e in first["items"]] == [80, 70]
    assert first["items"][0]["actor"] == "sam" and first["items"][0]["project"] == "101"
    rest = supervisor_api.get(
        "/api/v1/audit", project="101", action="project.settings", before=first["next_before"]
    ).json()
    assert [e["after"].get("list_size") for e in rest["items"]] == [60, None]  # the fixture's own change last
    assert rest["next_before"] is None


def test_the_openapi_document_describes_the_console_routes(client):
    paths = client.get("/api/openapi.json").json()["paths"]
    assert "/api/v1/projects/{key}/queues/{name}" in paths
    assert "/api/v1/accounts/{name}/test" in paths
