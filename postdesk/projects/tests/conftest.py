"""Fixtures of the supervisor console tests: logged-in clients, a project with templates and ticket types, and helpers
to read an inline error and to snapshot the whole database."""

from __future__ import annotations

import html
import json
import re

import pytest
from django.apps import apps
from django.test import Client


@pytest.fixture
def supervisor_client(sam):
    client = Client()
    client.force_login(sam)
    return client


@pytest.fixture
def agent_client(alice):
    client = Client()
    client.force_login(alice)
    return client


class JsonApi:
    """The shared ApiClient (bearer token, JSON), with the PATCH and PUT the console's API uses."""

    def __init__(self, client):
        self.inner = client

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def _send(self, method, path, data):
        return getattr(self.inner.client, method)(
            path, json.dumps(data), content_type="application/json", **self.inner._headers()
        )

    def patch(self, path, data):
        return self._send("patch", path, data)

    def put(self, path, data):
        return self._send("put", path, data)


@pytest.fixture
def supervisor_api(api, sam):
    return JsonApi(api(sam))


@pytest.fixture
def agent_api(api, alice):
    return JsonApi(api(alice))


@pytest.fixture
def templates(project):
    from postdesk.projects import services

    services.upsert_template(
        project,
        "ack",
        {"subject": "We got it", "body": "Thanks", "visible_to_agents": False},
    )
    services.upsert_template(
        project,
        "thanks",
        {
            "subject": "Re: {{ subject }}",
            "body": "Thank you",
            "cc": ["team@acme.test"],
            "bcc": ["archive@acme.test"],
        },
    )
    services.upsert_ticket_type(project, "Complaint", "COMPLAINT")
    return project


def inline_error(response, element_id: str) -> str:
    """The text of the inline error element with this id (empty: there is none)."""
    content = response.content.decode()
    match = re.search(rf'<(p|div)[^>]*\bid="{re.escape(element_id)}"[^>]*>(.*?)</\1>', content, re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", match.group(2))).strip() if match else ""


def snapshot() -> dict:
    """Every row of every table (sessions and API token bookkeeping aside): to prove a refused change changed nothing."""
    state = {}
    for model in apps.get_models():
        if model._meta.label in ("sessions.Session", "accounts.ApiToken", "contenttypes.ContentType"):
            continue
        if model._meta.app_label == "auth":
            continue
        state[model._meta.label] = sorted(map(repr, model.objects.values_list()))
    return state
