from django.urls import path

from postdesk.emails import views

urlpatterns = [
    path("inbox/", views.inbox, name="inbox"),
    path(
        "emails/<int:email_id>/attachments/<int:attachment_id>",
        views.attachment_download,
        name="attachment-download",
    ),
]
