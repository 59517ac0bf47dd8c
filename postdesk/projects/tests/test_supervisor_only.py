"""Agents get 403 on every supervisor page and every supervisor API route: found by walking the URL resolver (views
marked postdesk_role = "supervisor" by supervisor_required) and the projects and mailboxes API routers, so a new page
or route is covered the day it is added."""

from __future__ import annotations

import inspect
import json
import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from postdesk.mailboxes.api import router as accounts_router
from postdesk.projects.api import router as projects_router
from postdesk.projects.api import supervisor_auth

SAMPLE = {"int": "1", "str": "101", "slug": "x", "path": "x"}


def _walk(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p


def _fill(route: str) -> str:
    return "/" + re.sub(r"<(?:(\w+):)?\w+>", lambda m: SAMPLE[m.group(1) or "str"], route)


def supervisor_pages() -> list[tuple[str, str]]:
    pages = []
    for route, pattern in _walk(get_resolver().url_patterns):
        if getattr(pattern.callback, "postdesk_role", None) == "supervisor":
            pages.append((pattern.name, _fill(route)))
    return sorted(pages)


def _calls_require_supervisor(view) -> bool:
    return "require_supervisor(" in inspect.getsource(inspect.unwrap(view))


def supervisor_routes() -> list[tuple[str, str]]:
    routes = []
    for router in (projects_router, accounts_router):
        for path, path_view in router.path_operations.items():
            for operation in path_view.operations:
                if _calls_require_supervisor(operation.view_func):
                    for method in operation.methods:
                        routes.append((method, "/api/v1" + re.sub(r"\{\w+\}", "101", path)))
    return sorted(routes)


def _send(client, method, path, **headers):
    if method == "GET":
        return client.get(path, **headers)
    return getattr(client, method.lower())(path, json.dumps({}), content_type="application/json", **headers)


PAGES = supervisor_pages()
ROUTES = supervisor_routes()


def test_the_walk_finds_the_console():
    names = {name for name, _ in PAGES}
    assert {
        "supervisor-home",
        "project-create",
        "project-settings",
        "project-queues",
        "project-queue-rename",
        "project-queue-delete",
        "project-skills",
        "project-skill-cell",
        "project-templates",
        "project-template-edit",
        "project-template-delete",
        "project-ticket-types",
        "project-ticket-type-edit",
        "project-ticket-type-delete",
        "project-clone",
        "audit-log",
        "accounts-list",
        "account-create",
        "account-edit",
        "account-enable",
        "account-test",
    } <= names
    assert ("POST", "/api/v1/accounts/101/test") in ROUTES
    assert ("DELETE", "/api/v1/projects/101/queues/101") in ROUTES
    assert len(ROUTES) >= 25


def test_every_route_of_the_console_routers_is_for_supervisors():
    from ninja.constants import NOT_SET

    for router in (projects_router, accounts_router):
        assert router.auth is supervisor_auth  # agents are refused before the request body is read
        for path, path_view in router.path_operations.items():
            for operation in path_view.operations:
                assert _calls_require_supervisor(operation.view_func), path
                assert operation.auth_param is NOT_SET, f"{path} sets its own auth"


@pytest.mark.django_db
@pytest.mark.parametrize("name, url", PAGES, ids=[n for n, _ in PAGES])
def test_an_agent_gets_403_on_every_supervisor_page(name, url, agent_client, project):
    assert agent_client.get(url).status_code == 403
    assert agent_client.post(url, {"name": "x", "enabled": "0"}).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("name, url", PAGES, ids=[n for n, _ in PAGES])
def test_a_visitor_is_sent_to_the_login_page(name, url, client):
    response = client.get(url)
    assert response.status_code == 302 and response.url.startswith("/login/")


@pytest.mark.django_db
@pytest.mark.parametrize("method, path", ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_an_agent_gets_403_on_every_supervisor_api_route(method, path, agent_api, project):
    response = _send(agent_api.client, method, path, **agent_api._headers())
    assert response.status_code == 403, response.content
    assert response.json()["detail"].endswith("supervisors only")


@pytest.mark.django_db
@pytest.mark.parametrize("method, path", ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_an_agent_logged_in_in_the_browser_gets_403_too(method, path, agent_client, project):
    response = _send(agent_client, method, path)
    assert response.status_code == 403, response.content
