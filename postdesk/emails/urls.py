from django.urls import path

from postdesk.emails import views

urlpatterns = [
    path("inbox/", views.inbox, name="inbox"),
    path("inbox/rows", views.inbox_rows, name="inbox-rows"),
    path("search/", views.search, name="search"),
    path("emails/<int:email_id>/", views.email_detail, name="email-detail"),
    path("emails/<int:email_id>/body", views.email_body, name="email-body"),
    path("emails/<int:email_id>/images", views.allow_images, name="email-allow-images"),
    path("emails/<int:email_id>/inline/<int:attachment_id>", views.email_inline, name="email-inline"),
    path("emails/<int:email_id>/tickets", views.email_ticket_search, name="email-ticket-search"),
    path("emails/<int:email_id>/assign", views.email_assign, name="email-assign"),
    path("emails/<int:email_id>/reply", views.email_reply, name="email-reply"),
    path("emails/<int:email_id>/template", views.email_template, name="email-template"),
    path("emails/<int:email_id>/transfer", views.email_transfer, name="email-transfer"),
    path("emails/<int:email_id>/close", views.email_close, name="email-close"),
    path(
        "emails/<int:email_id>/attachments/<int:attachment_id>",
        views.attachment_download,
        name="attachment-download",
    ),
]
