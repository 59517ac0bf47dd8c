"""The authorisation matrix: every page and every API operation x role (anonymous, an agent, another project's agent,
a supervisor) x object owner (Alice's, Bob's in the same project, project 202's), generated from the URL
configuration and the OpenAPI documents, so a new route cannot be forgotten: a page that declares no role
(accounts.access.supervisor_required / agent_required) and is not in PUBLIC, an object parameter with no rule, or an
API operation that is neither supervisor-only nor in API_RULES fails `test_every_route_is_classified`.

Expected outcomes come from rules, not from a table of status codes:
- anonymous: pages redirect to the login page, the API answers 401 (public routes aside);
- supervisor-only: agents get 403; supervisors get past the check;
- objects: an email or ticket the user may not see answers 404 (or 403) to GET and POST alike; one they may see
  answers neither (and nothing answers 5xx); an attachment of another email is never served through this one;
- lists: an agent's lists never mention another owner's email or ticket (their subjects are markers).

Each request runs in a rolled-back savepoint, so POSTs that act (close, transfer, reply) leave the world unchanged
for the next one."""

from __future__ import annotations

import importlib
import inspect
import json
import re
from dataclasses import dataclass

import pytest
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from postdesk.api import api as main_api

pytestmark = pytest.mark.django_db
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64

# Pages anyone may open, with what they do. Everything else must declare its role.
PUBLIC = {
    "home": "redirects to the login page, the inbox or the console",
    "login": "the login form",
    "logout": "POST only; ends the session",
    "health": "database check for load balancers",
    "track-open": "open pixel: a signed token, always answers the pixel",
    "track-click": "click redirect: a signed token, redirects only to the stored target",
    "unsubscribe": "a signed token; GET shows a button, POST unsubscribes",
    "email-inline": "inline image: a signed token from the message document, or a user who may see the email",
    "openapi-json": "the OpenAPI document",
    "openapi-view": "the API documentation page",
    "api-root": "ninja's root (404)",
}


def _walk(patterns, prefix="", namespace=None):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + str(p.pattern), p.namespace or namespace)
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p, namespace


def apis() -> dict:
    """The NinjaAPI instances mounted in the URL configuration, by namespace."""
    found = {main_api.urls_namespace: main_api}
    try:
        compat = importlib.import_module("postdesk.integrations.compat").compat_api
        found[compat.urls_namespace] = compat
    except (ImportError, AttributeError):
        pass
    return found


def pages() -> list[tuple[str, str, object]]:
    """(route, name, view) of every page that is not an API operation."""
    out = []
    names = apis()
    for route, pattern, namespace in _walk(get_resolver().url_patterns):
        if namespace in names and pattern.name not in PUBLIC:
            continue  # API operations: from the OpenAPI documents below
        out.append((route, pattern.name, pattern.callback))
    return out


def operations() -> list[tuple[str, str, object]]:
    """(method, path, view function) of every API operation."""
    out = []
    for api in apis().values():
        for path, methods in api.get_openapi_schema()["paths"].items():
            for method in methods:
                out.append((method.upper(), path, _view_of(api, method.upper(), path)))
    return sorted(out, key=lambda o: (o[1], o[0]))


def _view_of(api, method, path):
    prefix = api.get_openapi_schema()  # noqa: F841 - the schema built above; routers hold the functions
    for _, router in api._routers:
        for route, path_view in router.path_operations.items():
            for operation in path_view.operations:
                full = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
                if method in operation.methods and path.endswith(full.rstrip("/") or "/"):
                    return operation.view_func
    return None


def calls_require_supervisor(view) -> bool:
    if view is None:
        return False
    source = inspect.getsource(inspect.unwrap(view))
    return "require_supervisor(" in source or "_campaign_for(" in source


# The world ------------------------------------------------------------------------------------------------------------


@dataclass
class World:
    objects: dict  # owner -> {"email", "ticket", "attachment", "inline", "record"}
    clients: dict  # role -> logged-in Client (None: anonymous)
    tokens: dict  # role -> API token
    project: object
    other: object


OWNERS = ("alice", "bob", "p202")
ROLES = ("anonymous", "alice", "charlie", "sam")
SEES = {"alice": {"alice"}, "charlie": {"p202"}, "sam": {"alice", "bob", "p202"}, "anonymous": set()}
PROJECT_OF = {"alice": "101", "bob": "101", "p202": "202"}
MEMBER = {"alice": {"101"}, "charlie": {"202"}, "sam": {"101", "202"}, "anonymous": set()}


@pytest.fixture
def world(users, project, other_project, forwarding, sender_account):
    from postdesk.accounts.services import create_token
    from postdesk.emails.models import Attachment
    from postdesk.records.services import create_record
    from postdesk.testing.factories import inbound_email
    from postdesk.tickets import services

    objects = {}
    for owner, proj, agent in (
        ("alice", project, "alice"),
        ("bob", project, "bob"),
        ("p202", other_project, "charlie"),
    ):
        email = inbound_email(proj, subject=f"marker-subject-{owner}", text=f"marker-body-{owner}")
        attachment = Attachment.objects.create(email=email, filename=f"file-{owner}.pdf", size=3, data=b"pdf")
        inline = Attachment.objects.create(
            email=email,
            filename=f"logo-{owner}.png",
            content_type="image/png",
            size=len(PNG),
            data=PNG,
            inline=True,
            content_id=f"logo-{owner}@x",
        )
        ticket = services.assign_email(email, title=f"marker-ticket-{owner}", by=users[agent])
        record = create_record(proj, name=f"Record {owner}", email=f"{owner}@example.com")
        objects[owner] = {
            "email": email,
            "ticket": ticket,
            "attachment": attachment,
            "inline": inline,
            "record": record,
        }
    clients = {"anonymous": Client()}
    tokens = {"anonymous": None}
    for role in ("alice", "charlie", "sam"):
        clients[role] = Client()
        clients[role].force_login(users[role])
        tokens[role] = create_token(users[role])
    return World(objects, clients, tokens, project, other_project)


def isolated(send):
    """Run one request in a savepoint that is rolled back afterwards."""
    with transaction.atomic():
        response = send()
        transaction.set_rollback(True)
    return response


def login_redirect(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith("/login/")


# Pages -------------------------------------------------------------------------------------------------------------

OBJECT_PARAMS = {"email_id", "attachment_id", "number"}


def fill_page(route: str, world: World, owner: str, *, mismatch: bool = False) -> str:
    o = world.objects[owner]
    values = {
        "email_id": o["email"].pk,
        "attachment_id": (world.objects["p202"] if mismatch else o)["attachment"].pk,
        "number": o["ticket"].number,
        "key": PROJECT_OF[owner],
        "name": "support-in",
        "queue_id": world.project.default_queue.pk,
        "template_id": 1,
        "pk": 1,
        "user_id": world.objects["alice"]["email"].pk,
        "protocol": "smtp",
        "token": "not-a-token",
        "webhook_id": 1,
        "delivery_id": 1,
    }
    return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: str(values.get(m.group(2), 1)), route)


def params_of(route: str) -> set[str]:
    return set(re.findall(r"<(?:\w+:)?(\w+)>", route))


def page_kind(route: str, name: str, view) -> str:
    role = getattr(view, "postdesk_role", None)
    if name in PUBLIC:
        return "public"
    if role == "supervisor":
        return "supervisor"
    if role == "agent":
        objects = params_of(route) & OBJECT_PARAMS
        unknown = params_of(route) - OBJECT_PARAMS
        if unknown:
            return f"unclassified: agent page with parameters {sorted(unknown)} that have no visibility rule"
        return "object" if objects else "agent"
    return "unclassified: no role declared (supervisor_required / agent_required) and not in PUBLIC"


PAGES = pages()


def test_every_route_is_classified():
    problems = [
        f"{route} ({name}): {kind}"
        for route, name, view in PAGES
        if (kind := page_kind(route, name, view)).startswith("unclassified")
    ]
    problems += [
        f"{method} {path}: add it to API_RULES or make it supervisor-only"
        for method, path, view in operations()
        if api_rule(method, path, view) is None
    ]
    assert not problems, "\n".join(problems)
    assert len(PAGES) >= 50 and len(operations()) >= 45  # the walk really found the routes


def both_methods(client, url):
    return [isolated(lambda: client.get(url)), isolated(lambda: client.post(url, {}))]


@pytest.mark.parametrize(
    "route, name",
    [(r, n) for r, n, v in PAGES if page_kind(r, n, v) == "supervisor"],
    ids=lambda v: v if isinstance(v, str) and "/" not in v else None,
)
def test_supervisor_pages(world, route, name):
    url = fill_page(route, world, "alice")
    for response in both_methods(world.clients["anonymous"], url):
        assert login_redirect(response), (url, response.status_code)
    for role in ("alice", "charlie"):
        for response in both_methods(world.clients[role], url):
            assert response.status_code == 403, (role, url, response.status_code)
    for response in both_methods(world.clients["sam"], url):
        assert response.status_code != 403 and not login_redirect(response) and response.status_code < 500, (
            url,
            response.status_code,
        )


@pytest.mark.parametrize("route, name", [(r, n) for r, n, v in PAGES if page_kind(r, n, v) == "agent"])
def test_agent_pages_without_objects(world, route, name):
    url = fill_page(route, world, "alice")
    for response in both_methods(world.clients["anonymous"], url):
        assert login_redirect(response), (url, response.status_code)
    for role in ("alice", "charlie", "sam"):
        for response in both_methods(world.clients[role], url):
            assert not login_redirect(response) and response.status_code < 500, (
                role,
                url,
                response.status_code,
            )
            if response.status_code == 200 and response.get("Content-Type", "").startswith("text/html"):
                text = response.content.decode()
                for owner in OWNERS:
                    if owner not in SEES[role]:
                        assert (
                            f"marker-subject-{owner}" not in text and f"marker-ticket-{owner}" not in text
                        ), (role, url, owner)


@pytest.mark.parametrize("route, name", [(r, n) for r, n, v in PAGES if page_kind(r, n, v) == "object"])
def test_object_pages(world, route, name):
    for owner in OWNERS:
        url = fill_page(route, world, owner)
        for response in both_methods(world.clients["anonymous"], url):
            assert login_redirect(response), (url, response.status_code)
        for role in ("alice", "charlie", "sam"):
            responses = both_methods(world.clients[role], url)
            codes = [r.status_code for r in responses]
            assert all(c < 500 for c in codes), (role, owner, url, codes)
            if owner in SEES[role]:
                assert any(c not in (403, 404, 405) for c in codes), (role, owner, url, codes)
            else:
                assert set(codes) <= {403, 404, 405} and set(codes) & {403, 404}, (role, owner, url, codes)
        if "attachment_id" in params_of(route):  # another email's attachment through this email: never
            mixed = fill_page(route, world, owner, mismatch=True)
            if owner != "p202":
                for role in ("alice", "charlie", "sam"):
                    assert {r.status_code for r in both_methods(world.clients[role], mixed)} <= {404, 405}


def test_inline_images_need_the_documents_token_or_a_user_who_may_see_the_email(world):
    from postdesk.emails.views import inline_token

    for owner in OWNERS:
        o = world.objects[owner]
        url = f"/emails/{o['email'].pk}/inline/{o['inline'].pk}"
        assert world.clients["anonymous"].get(url).status_code == 404
        token = inline_token(o["email"].pk, o["inline"].pk)
        assert world.clients["anonymous"].get(url, {"t": token}).status_code == 200
        for role in ("alice", "charlie", "sam"):
            assert world.clients[role].get(url).status_code == (200 if owner in SEES[role] else 404), (
                role,
                owner,
            )
        other = world.objects["p202" if owner != "p202" else "alice"]["inline"]
        stolen = f"/emails/{o['email'].pk}/inline/{other.pk}"
        assert (
            world.clients["anonymous"].get(stolen, {"t": inline_token(o["email"].pk, other.pk)}).status_code
            == 404
        )
        assert world.clients["sam"].get(stolen).status_code == 404


def test_public_pages_answer_everyone_without_leaking(world):
    anonymous = world.clients["anonymous"]
    assert anonymous.get("/health").status_code == 200
    assert anonymous.get("/login/").status_code == 200
    assert login_redirect(anonymous.get("/"))
    assert anonymous.get("/t/o/not-a-token").status_code == 200  # the pixel, whatever the token
    assert anonymous.get("/t/c/not-a-token").status_code == 404
    assert anonymous.get("/t/u/not-a-token").status_code == 404
    assert anonymous.post("/t/u/not-a-token", {"List-Unsubscribe": "One-Click"}).status_code == 404


# API -----------------------------------------------------------------------------------------------------------------

# Operations agents may call, with the rule that decides who sees what. Supervisor-only operations are recognised by
# their security scheme or their require_supervisor() call and need no entry.
API_RULES = {
    ("GET", "/api/v1/health"): "public",
    ("GET", "/api/v1/emails"): "list",
    ("GET", "/api/v1/tickets"): "list",
    ("GET", "/api/v1/emails/{email_id}"): "email",
    ("GET", "/api/v1/emails/{email_id}/raw"): "email",
    ("POST", "/api/v1/emails/{email_id}/ticket"): "email",
    ("GET", "/api/v1/tickets/{number}"): "ticket",
    ("POST", "/api/v1/tickets/{number}/reply"): "ticket",
    ("POST", "/api/v1/tickets/{number}/close"): "ticket",
    ("POST", "/api/v1/tickets/{number}/transfer"): "ticket",
    ("POST", "/api/v1/records/{record_id}/disposition"): "record",
    ("GET", "/v2/projects/{key}/emails/{year}/{month}"): "project-list",
    ("GET", "/v2/projects/{key}/emails/{year}/{month}/{day}"): "project-list",
    ("GET", "/v2/projects/{key}/tickets"): "project-list",
}

# A valid body (or query) per operation, so that the request reaches the access check instead of a 422.
BODIES = {
    ("POST", "/api/v1/emails/{email_id}/ticket"): {"new": {"title": "x"}},
    ("POST", "/api/v1/tickets/{number}/reply"): {"body": "hello"},
    ("POST", "/api/v1/tickets/{number}/close"): {},
    ("POST", "/api/v1/tickets/{number}/transfer"): {"agent": "bob"},
    ("POST", "/api/v1/records/{record_id}/disposition"): {"disposition": "none"},
    ("POST", "/api/v1/campaigns"): {
        "account": "news",
        "template": "news",
        "project": "101",
        "recipients": [{"email": "a@example.com"}],
    },
}
QUERIES = {
    ("GET", "/api/v1/emails"): {"include_ticketed": "true"},
    ("GET", "/api/v1/stats/agents"): {"project": "101"},
    ("GET", "/api/v1/stats/daily"): {"project": "101"},
    ("GET", "/api/v1/monitoring"): {"project": "101"},
}


def api_rule(method: str, path: str, view) -> str | None:
    if (method, path) in API_RULES:
        return API_RULES[(method, path)]
    schema = apis()
    for api in schema.values():
        operation = api.get_openapi_schema()["paths"].get(path, {}).get(method.lower())
        if operation and any("Supervisor" in name for s in operation.get("security", []) for name in s):
            return "supervisor"
    return "supervisor" if calls_require_supervisor(view) else None


def fill_api(path: str, world: World, owner: str) -> str:
    o = world.objects[owner]
    values = {
        "email_id": o["email"].pk,
        "number": o["ticket"].number,
        "record_id": o["record"].pk,
        "key": PROJECT_OF[owner],
        "year": "2026",
        "month": "11",
        "day": "26",
        "name": "support-in",
        "account": "support-in",
        "campaign_id": 1,
        "username": "alice",
        "export_value": "X",
    }
    return re.sub(r"\{(\w+)\}", lambda m: str(values.get(m.group(1), "1")), path)


def call(world: World, role: str, method: str, path: str, url: str):
    client = world.clients["anonymous"]
    headers = {"HTTP_AUTHORIZATION": f"Bearer {world.tokens[role]}"} if world.tokens.get(role) else {}
    if method == "GET":
        return isolated(lambda: client.get(url, QUERIES.get((method, path), {}), **headers))
    body = BODIES.get((method, path), {})
    if path.startswith("/api/v1/inbound/"):
        return isolated(
            lambda: client.post(url, b"Subject: x\r\n\r\nx\r\n", content_type="message/rfc822", **headers)
        )
    send = getattr(client, method.lower())
    return isolated(lambda: send(url, json.dumps(body), content_type="application/json", **headers))


OPERATIONS = operations()


@pytest.mark.parametrize(
    "method, path", [(m, p) for m, p, _ in OPERATIONS], ids=[f"{m} {p}" for m, p, _ in OPERATIONS]
)
def test_api_operations(world, method, path):
    view = next(v for m, p, v in OPERATIONS if (m, p) == (method, path))
    rule = api_rule(method, path, view)
    assert rule is not None, f"{method} {path} is not classified"
    owners = OWNERS if rule in ("email", "ticket", "record", "project-list") else ("alice",)
    for owner in owners:
        url = fill_api(path, world, owner)
        anonymous = call(world, "anonymous", method, path, url)
        if rule == "public":
            assert anonymous.status_code == 200
            continue
        assert anonymous.status_code == 401, (url, anonymous.status_code)
        for role in ("alice", "charlie", "sam"):
            response = call(world, role, method, path, url)
            code = response.status_code
            assert code < 500, (role, url, code, response.content[:300])
            if rule == "supervisor":
                allowed = role == "sam"
            elif rule in ("email", "ticket"):
                allowed = owner in SEES[role]
            elif rule in ("record", "project-list"):
                allowed = PROJECT_OF[owner] in MEMBER[role]
            else:  # list
                allowed = True
            if allowed and rule == "supervisor":  # past the role check (a made-up object id may still be 404)
                assert code not in (401, 403), (role, owner, url, code, response.content[:300])
            elif allowed:
                assert code not in (401, 403, 404), (role, owner, url, code, response.content[:300])
            else:
                assert code in (403, 404), (role, owner, url, code, response.content[:300])
            if code == 200 and rule in ("list", "project-list"):
                text = response.content.decode()
                for other in OWNERS:
                    if other not in SEES[role]:
                        assert (
                            f"marker-subject-{other}" not in text and f"marker-ticket-{other}" not in text
                        ), (role, url, other)


def test_a_browser_session_without_the_csrf_token_cannot_act_through_the_api(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.objects["alice"]["ticket"].owner)
    number = world.objects["alice"]["ticket"].number
    response = client.post(f"/api/v1/tickets/{number}/close", "{}", content_type="application/json")
    assert response.status_code in (401, 403)
