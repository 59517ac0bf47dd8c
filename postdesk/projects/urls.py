from django.urls import path

from postdesk.projects import views

urlpatterns = [
    path("supervisor/", views.supervisor_home, name="supervisor-home"),
]
