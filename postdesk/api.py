"""The JSON API: django-ninja under /api/v1/ (each router declares its full paths), OpenAPI at /api/openapi.json, docs at /api/docs.

Each domain app contributes a router (``<app>/api.py``); errors are 4xx with {"detail": "..."} naming what is wrong."""

from django.db import DatabaseError, DataError
from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from postdesk.accounts.auth import api_auth
from postdesk.core.errors import DomainError

api = NinjaAPI(
    title="postdesk API",
    version="1",
    urls_namespace="api",
    auth=api_auth,
    docs_url="/docs",
    openapi_url="/openapi.json",
    description="Contact-centre email and ticketing. Authenticate with `Authorization: Bearer <token>` "
    "(`postdesk token create USERNAME`).",
)


def _loc(loc) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "payload", "params")]
    return ".".join(parts) or ".".join(str(p) for p in loc)


@api.exception_handler(ValidationError)
def validation_error(request, exc: ValidationError):
    errors = [{"field": _loc(e.get("loc", ())), "message": e.get("msg", "invalid")} for e in exc.errors]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid request"
    return api.create_response(request, {"detail": detail, "errors": errors}, status=422)


@api.exception_handler(DomainError)
def domain_error(request, exc: DomainError):
    body = {"detail": str(exc)}
    if exc.field:
        body["field"] = exc.field
    return api.create_response(request, body, status=exc.status)


@api.exception_handler(AuthenticationError)
def auth_error(request, exc):
    return api.create_response(
        request, {"detail": "authentication required: Authorization: Bearer <token>"}, status=401
    )


@api.exception_handler(Http404)
def not_found(request, exc):
    return api.create_response(request, {"detail": str(exc) or "not found"}, status=404)


@api.exception_handler(HttpError)
def http_error(request, exc: HttpError):
    return api.create_response(request, {"detail": str(exc)}, status=exc.status_code)


@api.exception_handler(DataError)
def data_error(request, exc):
    # a value the database cannot hold that no schema caught (out of range, ...): the request's fault, not storage's
    return api.create_response(request, {"detail": "a value is outside what can be stored"}, status=400)


@api.exception_handler(DatabaseError)
def database_error(request, exc):
    return api.create_response(request, {"detail": "storage unavailable, try again"}, status=503)


@api.get("/v1/health", auth=None, tags=["meta"])
def health(request):
    from postdesk.core.views import health_status

    return health_status()


def _mount() -> None:
    import importlib

    for app in (
        "accounts",
        "projects",
        "mailboxes",
        "emails",
        "tickets",
        "records",
        "campaigns",
        "reports",
        "integrations",
        "inbound",
        "outbound",
    ):
        try:
            module = importlib.import_module(f"postdesk.{app}.api")
        except ModuleNotFoundError as exc:
            if exc.name != f"postdesk.{app}.api":
                raise
            continue
        api.add_router("/v1", module.router)


_mount()
