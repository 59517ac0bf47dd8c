from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "postdesk.projects"
    label = "projects"
