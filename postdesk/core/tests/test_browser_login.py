import pytest

from postdesk.testing.browser import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_agent_logs_in_and_lands_in_the_inbox(page, live_server, alice):
    login(page, live_server.url, "alice")
    assert page.url.endswith("/inbox/")
    assert page.locator("h1").first.inner_text() == "New emails"
    assert not page.watch.console_errors and not page.watch.page_errors
