from django.apps import AppConfig


class RetentionConfig(AppConfig):
    name = "postdesk.retention"
    label = "retention"
