"""Reports are for supervisors: agents get 403 on every page, export and API route of this app (the console-wide walk
in projects/tests/test_supervisor_only.py finds the pages too), visitors go to the login page."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db
PAGES = ["reports", "email-log", "email-log-export", "ticket-report", "ticket-report-export", "agent-statistics",
         "monitoring", "monitoring-live"]  # fmt: skip
ROUTES = [
    "/api/v1/monitoring?project=101",
    "/api/v1/stats/daily?project=101",
    "/api/v1/stats/agents?project=101",
]


@pytest.mark.parametrize("name", PAGES)
def test_an_agent_gets_403_on_every_reports_page(name, agent_client, project):
    assert agent_client.get(reverse(name)).status_code == 403


@pytest.mark.parametrize("name", PAGES)
def test_every_reports_page_is_marked_for_supervisors(name):
    from django.urls import resolve

    assert getattr(resolve(reverse(name)).func, "postdesk_role", None) == "supervisor"


@pytest.mark.parametrize("name", PAGES)
def test_a_visitor_is_sent_to_the_login_page(name, client, project):
    response = client.get(reverse(name))
    assert response.status_code == 302 and response.url.startswith("/login/")


@pytest.mark.parametrize("name", PAGES)
def test_a_supervisor_gets_every_page(name, supervisor_client, project):
    response = supervisor_client.get(reverse(name))
    assert response.status_code == (302 if name == "reports" else 200)


@pytest.mark.parametrize("path", ROUTES)
def test_an_agent_gets_403_on_every_reports_api_route(path, api, alice, sam, project):
    assert api(alice).get(path).status_code == 403
    assert api(sam).get(path).status_code == 200


def test_without_projects_the_pages_say_so(supervisor_client, sam):
    for name in PAGES[1:]:
        if name.endswith("export"):
            assert supervisor_client.get(reverse(name)).status_code == 422
            continue
        response = supervisor_client.get(reverse(name))
        assert response.status_code == 200, name
        if name != "monitoring-live":
            assert "No projects yet" in response.content.decode()
