from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "postdesk.accounts"
    label = "accounts"
