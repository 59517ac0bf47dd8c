from django.urls import path

from postdesk.tickets import views

urlpatterns = [
    path("tickets/", views.ticket_list, name="ticket-list"),
]
