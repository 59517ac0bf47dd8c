from django.apps import AppConfig


class RecordsConfig(AppConfig):
    name = "postdesk.records"
    label = "records"
