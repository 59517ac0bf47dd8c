from django.urls import path

from postdesk.outbound import views

urlpatterns = [
    path("t/o/<str:token>", views.opened, name="track-open"),
    path("t/c/<str:token>", views.clicked, name="track-click"),
    path("t/u/<str:token>", views.unsubscribe, name="unsubscribe"),
]
