"""The supervisor console's project pages: what a supervisor does there and what it changes (through the services,
in one transaction, written to the audit log)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from postdesk.core.models import AuditEvent
from postdesk.projects.models import AgentQueueSkill, Project, Queue
from postdesk.projects.tests.conftest import inline_error
from postdesk.projects.tests.test_rules_everywhere import Ctx, settings_post

pytestmark = pytest.mark.django_db


def test_the_supervisor_home_lists_the_projects_with_links(supervisor_client, project, other_project):
    response = supervisor_client.get(reverse("supervisor-home"))
    content = response.content.decode()
    assert reverse("project-settings", args=["101"]) in content
    assert reverse("project-settings", args=["202"]) in content
    assert "Acme Care" in content and "Beta Sales" in content


def test_a_supervisor_creates_a_project_with_its_default_queue(supervisor_client, sam):
    response = supervisor_client.post(reverse("project-create"), {"key": "303", "name": "Gamma"})
    assert response.status_code == 302 and response.url == reverse("project-settings", args=["303"])
    project = Project.objects.get(key="303")
    assert [(q.name, q.is_default) for q in project.queues.all()] == [("Default", True)]
    assert AuditEvent.objects.get(action="project.create").actor == sam


def test_every_email_handling_option_is_saved_from_the_general_settings(
    supervisor_client, project, templates
):
    response = settings_post(
        supervisor_client,
        Ctx(project, {}),
        name="Acme Customer Care",
        list_size=120,
        lock_emails=False,
        change_pref_user=False,
        auto_response_template="ack",
        agents_create_records=True,
        search=False,
        shared_tickets=True,
        display_address=False,
        display_template_cc=False,
        display_template_bcc=True,
        language_detection=True,
        email_queue=True,
        auto_delete_days=365,
    )
    assert response.status_code == 302
    project.refresh_from_db()
    assert project.name == "Acme Customer Care"
    assert (project.list_size, project.auto_delete_days, project.auto_response_template.name) == (
        120,
        365,
        "ack",
    )
    assert not project.lock_emails and not project.change_pref_user and not project.search
    assert not project.display_address and not project.display_template_cc
    assert project.agents_create_records and project.shared_tickets and project.display_template_bcc
    event = AuditEvent.objects.filter(action="project.settings").latest("id")
    assert event.before["list_size"] == 50 and event.after["list_size"] == 120
    assert event.after["auto_response_template"] == "ack"


def test_clearing_automatic_deletion_turns_it_off(supervisor_client, project):
    from postdesk.projects import services

    services.update_settings(project, {"auto_delete_days": 90})
    settings_post(supervisor_client, Ctx(project, {}), auto_delete_days="")
    project.refresh_from_db()
    assert project.auto_delete_days is None


def test_the_settings_page_shows_every_broken_rule_at_once_and_saves_nothing(supervisor_client, project):
    response = settings_post(
        supervisor_client,
        Ctx(project, {}),
        name="Renamed",
        list_size=0,
        language_detection=False,
        auto_delete_days=7,
    )
    assert response.status_code == 422
    assert "between 1 and 250" in inline_error(response, "id_list_size_error")
    assert "needs Email language detection" in inline_error(response, "id_email_queue_error")
    assert "at least 30" in inline_error(response, "id_auto_delete_days_error")
    assert 'aria-invalid="true"' in response.content.decode()
    # the form keeps what was typed, and nothing was saved
    assert 'value="Renamed"' in response.content.decode()
    project.refresh_from_db()
    assert project.name == "Acme Care" and project.language_detection and project.list_size == 50


def test_a_later_failure_rolls_back_the_whole_save(supervisor_client, project, forwarding):
    settings_post(supervisor_client, Ctx(project, {}), list_size=10, sender_accounts=["support-in"])
    project.refresh_from_db()
    assert project.list_size == 50


def test_sender_accounts_are_chosen_with_the_default(supervisor_client, project, sender_account):
    from postdesk.mailboxes.services import default_sender_for, upsert_account

    other, _ = upsert_account(
        {
            "name": "sales-out",
            "protocol": "smtp",
            "address": "sales@acme.test",
            "host": "smtp.acme.test",
            "auth": "none",
        }
    )
    page = supervisor_client.get(reverse("project-settings", args=["101"])).content.decode()
    assert 'name="sender_accounts" value="sales-out"' in page
    response = settings_post(
        supervisor_client,
        Ctx(project, {}),
        sender_accounts=["support-out", "sales-out"],
        default_sender_account="sales-out",
    )
    assert response.status_code == 302
    assert sorted(a.name for a in project.sender_accounts.all()) == ["sales-out", "support-out"]
    assert default_sender_for(project) == other
    # the project's own default: other projects offering these accounts keep theirs
    assert project.sender_links.get(is_default=True).account == other


def test_the_default_account_can_be_taken_off_a_project(supervisor_client, project, sender_account):
    response = settings_post(supervisor_client, Ctx(project, {}), sender_accounts=[])
    assert response.status_code == 302
    assert not project.sender_accounts.exists()
    sender_account.refresh_from_db()
    assert sender_account.is_default  # still the default of the projects that offer it


def test_template_visibility_is_set_with_checkboxes(supervisor_client, project, templates):
    settings_post(supervisor_client, Ctx(project, {}), visible_templates=["ack"])
    assert dict(project.templates.values_list("name", "visible_to_agents")) == {"ack": True, "thanks": False}


def test_a_language_queue_is_created_renamed_and_deleted(supervisor_client, project):
    url = reverse("project-queues", args=["101"])
    assert supervisor_client.post(url, {"name": "Deutsch", "language": "de"}).status_code == 302
    queue = project.queues.get(name="Deutsch")
    assert queue.language == "de"
    supervisor_client.post(reverse("project-queue-rename", args=["101", queue.pk]), {"name": "German"})
    queue.refresh_from_db()
    assert queue.name == "German"
    supervisor_client.post(reverse("project-queue-delete", args=["101", queue.pk]))
    assert not Queue.objects.filter(pk=queue.pk).exists()
    assert list(AuditEvent.objects.filter(action__startswith="queue.").values_list("action", flat=True))[
        :3
    ] == [
        "queue.delete",
        "queue.update",
        "queue.create",
    ]


def test_the_default_queue_can_be_renamed_but_not_deleted(supervisor_client, project):
    default = project.default_queue
    page = supervisor_client.get(reverse("project-queues", args=["101"])).content.decode()
    assert reverse("project-queue-delete", args=["101", default.pk]) not in page
    supervisor_client.post(reverse("project-queue-rename", args=["101", default.pk]), {"name": "General"})
    default.refresh_from_db()
    assert default.name == "General" and default.is_default
    response = supervisor_client.post(reverse("project-queue-delete", args=["101", default.pk]))
    assert response.status_code == 409
    assert "cannot" in inline_error(response, f"queue-{default.pk}_error") or "not deleted" in inline_error(
        response, f"queue-{default.pk}_error"
    )


def test_the_matrix_has_agents_as_rows_and_queues_as_columns(supervisor_client, project, users):
    page = supervisor_client.get(reverse("project-skills", args=["101"])).content.decode()
    english = project.queues.get(name="English")
    for user in ("alice", "bob", "charlie"):
        assert f">{users[user].display_name} <span" in page
    assert "sam</span>" not in page  # supervisors are not rows
    headers = page[page.index("<thead>") : page.index("</thead>")]
    assert headers.index("Default") < headers.index("English") < headers.index("Magyar")
    cell = (
        f'name="skill-{users["alice"].pk}-{english.pk}" id="skill-{users["alice"].pk}-{english.pk}" value="5"'
    )
    assert cell in page


def test_setting_a_skill_level_in_a_cell_assigns_the_agent(supervisor_client, project, users):
    charlie, magyar = users["charlie"], project.queues.get(name="Magyar")
    url = reverse("project-skill-cell", args=["101", charlie.pk, magyar.pk])
    response = supervisor_client.post(url, {f"skill-{charlie.pk}-{magyar.pk}": "7"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "Saved" in response.content.decode()
    assert AgentQueueSkill.objects.get(user=charlie, queue=magyar).level == 7
    assert project.members.filter(pk=charlie.pk).exists()
    # an empty cell takes the agent out of the queue
    supervisor_client.post(url, {f"skill-{charlie.pk}-{magyar.pk}": ""}, HTTP_HX_REQUEST="true")
    assert not AgentQueueSkill.objects.filter(user=charlie, queue=magyar).exists()


def test_a_refused_cell_shows_its_error_in_place(supervisor_client, project, users):
    alice, english = users["alice"], project.queues.get(name="English")
    url = reverse("project-skill-cell", args=["101", alice.pk, english.pk])
    response = supervisor_client.post(url, {f"skill-{alice.pk}-{english.pk}": "0"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200  # htmx swaps the cell with its error
    assert "1 to 10" in inline_error(response, f"skill-{alice.pk}-{english.pk}_error")
    assert AgentQueueSkill.objects.get(user=alice, queue=english).level == 5


def test_the_whole_matrix_saves_without_javascript(supervisor_client, project, users):
    alice, bob, charlie = users["alice"], users["bob"], users["charlie"]
    english, magyar = project.queues.get(name="English"), project.queues.get(name="Magyar")
    response = supervisor_client.post(
        reverse("project-skills", args=["101"]),
        {
            f"skill-{alice.pk}-{english.pk}": "9",
            f"skill-{bob.pk}-{english.pk}": "",
            f"skill-{charlie.pk}-{magyar.pk}": "4",
            f"skill-{charlie.pk}-{english.pk}": "",
        },
    )
    assert response.status_code == 302
    levels = {
        (s.user.username, s.queue.name): s.level
        for s in AgentQueueSkill.objects.filter(queue__project=project).select_related("user", "queue")
    }
    assert levels[("alice", "English")] == 9 and levels[("charlie", "Magyar")] == 4
    assert ("bob", "English") not in levels and levels[("bob", "Magyar")] == 5
    assert not project.members.filter(username="sam").exists()


def test_templates_are_created_edited_and_deleted(supervisor_client, project):
    url = reverse("project-templates", args=["101"])
    response = supervisor_client.post(
        url,
        {
            "name": "thanks",
            "subject": "Re: {{ subject }}",
            "body": "Thank you",
            "cc": "team@acme.test; boss@acme.test",
            "bcc": "archive@acme.test",
            "visible_to_agents": "on",
        },
    )
    assert response.status_code == 302
    template = project.templates.get(name="thanks")
    assert template.cc == ["team@acme.test", "boss@acme.test"] and template.bcc == ["archive@acme.test"]
    edit = reverse("project-template-edit", args=["101", template.pk])
    assert 'value="team@acme.test, boss@acme.test"' in supervisor_client.get(edit).content.decode()
    supervisor_client.post(edit, {"subject": "Thanks", "body": "Thanks again", "cc": "", "bcc": ""})
    template.refresh_from_db()
    assert (template.subject, template.cc, template.visible_to_agents) == ("Thanks", [], False)
    event = AuditEvent.objects.get(action="template.update")
    assert event.before["subject"] == "Re: {{ subject }}" and event.after["subject"] == "Thanks"
    supervisor_client.post(reverse("project-template-delete", args=["101", template.pk]))
    assert not project.templates.exists()


def test_a_template_name_is_unique(supervisor_client, project, templates):
    response = supervisor_client.post(
        reverse("project-templates", args=["101"]), {"name": "ack", "body": "x"}
    )
    assert response.status_code == 409
    assert "exists" in inline_error(response, "id_name_error")
    assert project.templates.get(name="ack").body == "Thanks"


def test_ticket_types_are_added_changed_and_deleted(supervisor_client, project):
    url = reverse("project-ticket-types", args=["101"])
    supervisor_client.post(url, {"label": "Complaint", "export_value": "COMPLAINT"})
    tt = project.ticket_types.get()
    supervisor_client.post(
        reverse("project-ticket-type-edit", args=["101", tt.pk]),
        {"label": "Customer complaint", "export_value": "COMPLAINT"},
    )
    tt.refresh_from_db()
    assert tt.label == "Customer complaint"
    supervisor_client.post(reverse("project-ticket-type-delete", args=["101", tt.pk]))
    assert not project.ticket_types.exists()


def test_a_ticket_type_in_use_is_not_deleted(supervisor_client, project, templates):
    from postdesk.tickets.models import Ticket

    tt = project.ticket_types.get()
    Ticket.objects.create(project=project, number="101-20261126-000001", type=tt, title="Broken")
    response = supervisor_client.post(reverse("project-ticket-type-delete", args=["101", tt.pk]))
    assert response.status_code == 409
    assert "1 ticket" in inline_error(response, f"tt-{tt.pk}_error")


def test_cloning_copies_settings_queues_templates_and_ticket_types_but_no_mail(
    supervisor_client, project, templates, sender_account
):
    from postdesk.projects import services
    from postdesk.tickets.models import Ticket

    services.update_settings(project, {"list_size": 77, "auto_response_template": "ack"})
    Ticket.objects.create(project=project, number="101-20261126-000001", title="Old case")
    response = supervisor_client.post(
        reverse("project-clone", args=["101"]), {"key": "102", "name": "Acme Two"}
    )
    assert response.status_code == 302 and response.url == reverse("project-settings", args=["102"])
    clone = Project.objects.get(key="102")
    assert clone.list_size == 77 and clone.email_queue and clone.auto_response_template.name == "ack"
    assert clone.auto_response_template.project == clone
    assert sorted(clone.queues.values_list("name", "language", "is_default")) == sorted(
        project.queues.values_list("name", "language", "is_default")
    )
    assert sorted(clone.templates.values_list("name", "visible_to_agents")) == [
        ("ack", False),
        ("thanks", True),
    ]
    assert list(clone.ticket_types.values_list("label", "export_value")) == [("Complaint", "COMPLAINT")]
    assert list(clone.sender_accounts.values_list("name", flat=True)) == ["support-out"]
    assert not Ticket.objects.filter(project=clone).exists()
    assert AuditEvent.objects.get(action="project.clone").after == {"from": "101"}


def test_the_audit_log_shows_who_when_before_and_after(supervisor_client, project):
    settings_post(supervisor_client, Ctx(project, {}), list_size=42)
    page = supervisor_client.get(reverse("audit-log") + "?project=101").content.decode()
    row = page[page.index("<code>project.settings</code>") - 400 :]
    assert "sam" in row and "list_size" in row and "<dd>50</dd>" in row and "<dd>42</dd>" in row
    other = supervisor_client.get(reverse("audit-log") + "?action=account.").content.decode()
    assert "<code>project.settings</code>" not in other


def test_the_audit_log_pages_through_long_histories(supervisor_client, project, sam):
    from postdesk.core.services import audit

    for i in range(60):
        audit("test.event", actor=sam, project=project, after={"i": i})
    first = supervisor_client.get(reverse("audit-log") + "?action=test.").content.decode()
    assert first.count("<code>test.event</code>") == 50 and "Page 1 of 2" in first
    second = supervisor_client.get(reverse("audit-log") + "?action=test.&page=2").content.decode()
    assert second.count("<code>test.event</code>") == 10
