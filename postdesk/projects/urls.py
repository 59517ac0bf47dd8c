from django.urls import path

from postdesk.projects import views

P = "supervisor/projects/<str:key>/"

urlpatterns = [
    path("supervisor/", views.supervisor_home, name="supervisor-home"),
    path("supervisor/new-project/", views.project_create, name="project-create"),
    path(P, views.project_settings, name="project-settings"),
    path(P + "queues/", views.project_queues, name="project-queues"),
    path(P + "queues/<int:queue_id>/rename/", views.project_queue_rename, name="project-queue-rename"),
    path(P + "queues/<int:queue_id>/delete/", views.project_queue_delete, name="project-queue-delete"),
    path(P + "skills/", views.project_skills, name="project-skills"),
    path(P + "skills/<int:user_id>/<int:queue_id>/", views.project_skill_cell, name="project-skill-cell"),
    path(P + "templates/", views.project_templates, name="project-templates"),
    path(P + "templates/<int:template_id>/", views.project_template_edit, name="project-template-edit"),
    path(
        P + "templates/<int:template_id>/delete/",
        views.project_template_delete,
        name="project-template-delete",
    ),
    path(P + "ticket-types/", views.project_ticket_types, name="project-ticket-types"),
    path(P + "ticket-types/<int:pk>/", views.project_ticket_type_edit, name="project-ticket-type-edit"),
    path(
        P + "ticket-types/<int:pk>/delete/",
        views.project_ticket_type_delete,
        name="project-ticket-type-delete",
    ),
    path(P + "clone/", views.project_clone, name="project-clone"),
    path("supervisor/audit/", views.audit_log, name="audit-log"),
    path("my/", views.my_settings, name="my-settings"),
]
