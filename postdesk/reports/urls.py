from django.urls import path

from postdesk.reports import views

R = "supervisor/reports/"

urlpatterns = [
    path(R, views.reports_home, name="reports"),
    path(R + "emails/", views.email_log, name="email-log"),
    path(R + "emails.csv", views.email_log_export, name="email-log-export"),
    path(R + "tickets/", views.ticket_report, name="ticket-report"),
    path(R + "tickets.csv", views.ticket_report_export, name="ticket-report-export"),
    path(R + "statistics/", views.agent_statistics, name="agent-statistics"),
    path(R + "monitoring/", views.monitoring_page, name="monitoring"),
    path(R + "monitoring/live", views.monitoring_live, name="monitoring-live"),
    path("my/state", views.agent_state, name="agent-state"),
]
