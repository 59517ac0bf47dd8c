from django.apps import AppConfig


class TicketsConfig(AppConfig):
    name = "postdesk.tickets"
    label = "tickets"
