from django.urls import path

from postdesk.emails import views

urlpatterns = [
    path("inbox/", views.inbox, name="inbox"),
]
