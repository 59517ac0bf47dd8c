"""Pages of every domain app, gathered here so that each app's urls.py stays beside its views."""

import importlib

from django.urls import include, path

urlpatterns = []
for _app in (
    "inbound",
    "emails",
    "tickets",
    "projects",
    "mailboxes",
    "records",
    "campaigns",
    "reports",
    "outbound",
    "integrations",
    "accounts",
    "retention",
):
    try:
        importlib.import_module(f"postdesk.{_app}.urls")
    except ModuleNotFoundError as exc:
        if exc.name != f"postdesk.{_app}.urls":
            raise
        continue
    urlpatterns.append(path("", include(f"postdesk.{_app}.urls")))
