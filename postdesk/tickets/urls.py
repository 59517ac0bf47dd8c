from django.urls import path

from postdesk.tickets import views

urlpatterns = [
    path("tickets/", views.ticket_list, name="ticket-list"),
    path("tickets/<str:number>/", views.ticket_detail, name="ticket-detail"),
    path("tickets/<str:number>/reply", views.ticket_reply, name="ticket-reply"),
    path("tickets/<str:number>/template", views.ticket_template, name="ticket-template"),
    path("tickets/<str:number>/collision", views.ticket_collision, name="ticket-collision"),
    path("tickets/<str:number>/transfer", views.ticket_transfer, name="ticket-transfer"),
    path("tickets/<str:number>/close", views.ticket_close, name="ticket-close"),
]
