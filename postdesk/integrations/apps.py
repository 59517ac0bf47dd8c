from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "postdesk.integrations"
    label = "integrations"
