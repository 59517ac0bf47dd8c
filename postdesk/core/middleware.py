"""Security headers on every response: a strict Content-Security-Policy (our own scripts only; htmx comes from the
django-htmx package) unless a view sets its own, and no referrers leaking to remote hosts. Requests carrying NUL
characters in their text are refused before they reach the database."""

import json

from django.http import HttpResponseBadRequest, JsonResponse


class SecurityHeadersMiddleware:
    CSP = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'; object-src 'none'"
    )

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", self.CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        return response


class RejectNulMiddleware:
    """A NUL character can be stored nowhere (PostgreSQL refuses it in text, SQLite's full-text search fails on it),
    so a request with one in its path, query, form fields or JSON body is bad input: 422 naming where (API), 400
    (pages), instead of a database error answered as 503 or 500. Raw bodies (a message/rfc822 posted to
    /api/v1/inbound) are not text and keep every byte."""

    API_PREFIXES = ("/api/", "/v2/")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        where = self.nul_in(request)
        if where is None:
            return self.get_response(request)
        detail = f"{where}: NUL characters are not allowed"
        if request.path.startswith(self.API_PREFIXES):
            return JsonResponse({"detail": detail, "field": where}, status=422)
        return HttpResponseBadRequest(detail, content_type="text/plain; charset=utf-8")

    def nul_in(self, request) -> str | None:
        if "\x00" in request.path:
            return "path"
        for name, values in request.GET.lists():
            if "\x00" in name or any("\x00" in v for v in values):
                return name.replace("\x00", "")
        content_type = request.content_type or ""
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return None
        if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            for name, values in request.POST.lists():
                if "\x00" in name or any("\x00" in v for v in values):
                    return name.replace("\x00", "")
        elif content_type == "application/json" and (b"\\u0000" in request.body or b"\x00" in request.body):
            try:
                return _nul_path(json.loads(request.body)) or "body"
            except ValueError:
                return "body"
        return None


def _nul_path(value, field: str = "") -> str | None:
    """The field holding a NUL character in parsed JSON: "body", "cc[1]", "new.title"."""
    if isinstance(value, str):
        return (field or "body") if "\x00" in value else None
    if isinstance(value, dict):
        children = [(f"{field}.{key}" if field else str(key), key, item) for key, item in value.items()]
    elif isinstance(value, list):
        children = [(f"{field or 'body'}[{i}]", "", item) for i, item in enumerate(value)]
    else:
        return None
    for name, key, item in children:
        if "\x00" in key:
            return field or "body"
        found = _nul_path(item, name)
        if found:
            return found
    return None
