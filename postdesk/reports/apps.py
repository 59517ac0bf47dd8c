from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "postdesk.reports"
    label = "reports"
