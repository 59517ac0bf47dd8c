from django.apps import AppConfig


class EmailsConfig(AppConfig):
    name = "postdesk.emails"
    label = "emails"
