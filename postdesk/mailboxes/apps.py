from django.apps import AppConfig


class MailboxesConfig(AppConfig):
    name = "postdesk.mailboxes"
    label = "mailboxes"
