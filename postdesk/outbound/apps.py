from django.apps import AppConfig


class OutboundConfig(AppConfig):
    name = "postdesk.outbound"
    label = "outbound"
