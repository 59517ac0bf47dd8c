from django.urls import path

from postdesk.integrations import views

W = "supervisor/projects/<str:key>/webhooks/"

urlpatterns = [
    path(W, views.project_webhooks, name="project-webhooks"),
    path(W + "<int:webhook_id>/", views.project_webhook, name="project-webhook"),
    path(W + "<int:webhook_id>/delete/", views.project_webhook_delete, name="project-webhook-delete"),
    path(W + "<int:webhook_id>/enable/", views.project_webhook_enable, name="project-webhook-enable"),
    path(W + "<int:webhook_id>/disable/", views.project_webhook_disable, name="project-webhook-disable"),
    path(W + "<int:webhook_id>/test/", views.project_webhook_test, name="project-webhook-test"),
    path(
        W + "<int:webhook_id>/deliveries/<int:delivery_id>/redeliver/",
        views.project_webhook_redeliver,
        name="project-webhook-redeliver",
    ),
]
