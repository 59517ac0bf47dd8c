from django.urls import path

from postdesk.mailboxes import views

urlpatterns = [
    path("supervisor/accounts/", views.accounts_list, name="accounts-list"),
    path("supervisor/new-account/<str:protocol>/", views.account_create, name="account-create"),
    path("supervisor/accounts/<str:name>/", views.account_edit, name="account-edit"),
    path("supervisor/accounts/<str:name>/enable/", views.account_enable, name="account-enable"),
    path("supervisor/accounts/<str:name>/test/", views.account_test, name="account-test"),
]
