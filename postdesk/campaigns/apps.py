from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "postdesk.campaigns"
    label = "campaigns"
