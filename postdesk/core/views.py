from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from postdesk.core import clock


class LoginView(auth_views.LoginView):
    template_name = "core/login.html"
    redirect_authenticated_user = True


@require_POST
def logout_view(request):
    logout(request)
    return redirect("login")


def home(request):
    if not request.user.is_authenticated:
        return redirect("login")
    if request.user.is_supervisor:
        return redirect("supervisor-home")
    return redirect("inbox")


def health_status() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"status": "ok", "database": connection.vendor, "time": clock.now().isoformat()}


def health(request):
    try:
        return JsonResponse(health_status())
    except Exception as exc:  # noqa: BLE001 - a health check reports, it does not raise
        return JsonResponse({"status": "unavailable", "error": type(exc).__name__}, status=503)
