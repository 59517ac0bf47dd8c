"""'My settings' (/my/): what an agent's supervisors set up for them, read-only."""

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def page_of(user) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(reverse("my-settings"))
    assert response.status_code == 200
    return response.content.decode()


def test_an_agent_sees_their_queues_with_their_skill_levels(project, other_project, bob):
    page = page_of(bob)
    queues = page[page.index('class="list my-queues"') :]
    queues = queues[: queues.index("</table>")]
    assert "<td>Magyar</td><td>hu</td><td>5</td>" in queues
    assert "<td>English</td><td>en</td><td>2</td>" in queues
    assert "Beta Sales" not in page  # not a member of project 202


def test_an_agent_sees_only_the_templates_visible_to_agents(project, templates, alice):
    page = page_of(alice)
    assert "<strong>thanks</strong>" in page and "<strong>ack</strong>" not in page


def test_template_cc_and_bcc_are_shown_as_the_project_says(project, templates, alice):
    from postdesk.projects import services

    page = page_of(alice)
    assert "team@acme.test" in page and "archive@acme.test" not in page  # the defaults: CC shown, BCC hidden
    services.update_settings(project, {"display_template_cc": False, "display_template_bcc": True})
    page = page_of(alice)
    assert "team@acme.test" not in page and "archive@acme.test" in page


def test_the_sender_accounts_are_listed_with_the_default_marked(project, sender_account, alice):
    from postdesk.mailboxes.services import set_account_enabled, upsert_account
    from postdesk.projects import services

    other, _ = upsert_account(
        {
            "name": "sales-out",
            "protocol": "smtp",
            "address": "sales@acme.test",
            "host": "h.acme.test",
            "auth": "none",
        }
    )
    services.set_sender_accounts(project, [sender_account, other])
    page = page_of(alice)
    senders = page[page.index('class="plain my-senders"') :]
    senders = senders[: senders.index("</ul>")]
    assert 'Acme Support &lt;support@acme.test&gt; <span class="badge ok">default</span>' in senders
    assert "sales-out &lt;sales@acme.test&gt;</li>" in senders
    set_account_enabled(other, False)
    assert "sales@acme.test" not in page_of(alice)


def test_an_agent_in_no_project_is_told_so(charlie):
    assert "not a member of any project" in page_of(charlie)
