"""/v2/: the vendor-compatible API (compat.py). Included from postdesk/urls.py as ``path("v2/", include(...))``."""

from django.urls import path

from postdesk.integrations.compat import compat_api

urlpatterns = [path("", compat_api.urls)]
