from django.urls import include, path

from postdesk.api import api
from postdesk.core import views as core_views

urlpatterns = [
    path("", core_views.home, name="home"),
    path("login/", core_views.LoginView.as_view(), name="login"),
    path("logout/", core_views.logout_view, name="logout"),
    path("health", core_views.health, name="health"),
    path("api/", api.urls),
    path("v2/", include("postdesk.integrations.compat_urls")),
    path("", include("postdesk.core.urls")),
]
