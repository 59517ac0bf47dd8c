from django.apps import AppConfig


class InboundConfig(AppConfig):
    name = "postdesk.inbound"
    label = "inbound"
