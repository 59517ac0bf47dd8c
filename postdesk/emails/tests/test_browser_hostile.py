"""Acceptance 2 in a real browser: hostile mail runs no script anywhere (list, thread, search, notifications) and loads
nothing remote until the agent allows images. One message comes through the real intake path (script, event
handlers, javascript: links, SVG, iframes, forms and objects in the HTML; HTML in the subject, display name and
attachment name; inline cid: images, one of them SVG); another has raw script stored as if the sanitiser had missed
it, which the iframe's sandbox and the document's CSP must still stop."""

import pytest
from playwright.sync_api import expect

from postdesk.emails.models import EmailContent
from postdesk.testing import screens
from postdesk.testing.browser import login
from postdesk.testing.factories import inbound_email, receive

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MISSED_BY_THE_SANITISER = (
    "<p>unsanitised-marker</p><script>alert('bypass')</script><img src=x onerror=\"alert('bypass-img')\">"
    "<svg onload=\"alert('bypass-svg')\"></svg><iframe src=\"javascript:alert('bypass-frame')\"></iframe>"
    '<img src="https://evil.example.net/bypass.png"><a href="javascript:alert(\'bypass-link\')" id="js">go</a>'
)


def test_hostile_mail_runs_no_script_and_loads_nothing_remote_anywhere(
    page, live_server, alice, project, forwarding
):
    hostile = receive(forwarding, screens.hostile_raw())
    bypass = inbound_email(project, subject="Unsanitised", queue=hostile.queue)
    EmailContent.objects.filter(email=bypass).update(html=MISSED_BY_THE_SANITISER)
    inline = []
    page.on("response", lambda r: inline.append((r.url, r.status)) if "/inline/" in r.url else None)
    url = live_server.url
    login(page, url, "alice")

    # The list: the subject and the sender's name are text.
    row = page.locator(f"#inbox-rows tr[data-id='{hostile.pk}']")
    expect(row.locator("td.col-subject a")).to_have_text(screens.HOSTILE_SUBJECT)
    expect(row.locator("td.col-from .sender")).to_have_text(screens.HOSTILE_NAME)
    page.wait_for_timeout(5500)  # one live refresh of the list with the hostile row in it

    # Search results.
    page.goto(f"{url}/search/?q=hostile-marker-words")
    expect(page.locator("table.list").first.locator("td.col-subject a")).to_have_text(screens.HOSTILE_SUBJECT)

    # The thread: the HTML runs in a sandboxed iframe; remote images wait; the inline PNG shows, the SVG does not.
    page.goto(f"{url}/emails/{hostile.pk}/")
    expect(page.locator("h1.subject")).to_have_text(screens.HOSTILE_SUBJECT)
    expect(page.locator(".thread .message .sender").first).to_have_text(screens.HOSTILE_NAME)
    expect(page.locator(".files a")).to_have_text(screens.HOSTILE_FILENAME)
    iframe = page.locator(f"#body-{hostile.pk} iframe")
    assert iframe.get_attribute("sandbox") == ""
    frame = page.frame_locator(f"#body-{hostile.pk} iframe")
    expect(frame.locator("body")).to_contain_text("hostile-marker-words")
    expect(frame.locator("script, svg, iframe, form, object, [onerror], [onload]")).to_have_count(0)
    frame.locator("a", has_text="click me").click()
    frame.locator("div", has_text="hover me").last.hover()
    page.wait_for_timeout(500)
    assert any("/inline/" in u and s == 200 for u, s in inline), inline  # the cid: PNG, with its token
    assert not any(
        s == 200 for u, s in inline if f"/inline/{hostile.attachments.get(content_id='vector@x').pk}?" in u
    )

    # A body with script the sanitiser missed: sandbox and CSP still run nothing and fetch nothing.
    page.goto(f"{url}/emails/{bypass.pk}/")
    bypass_frame = page.frame_locator(f"#body-{bypass.pk} iframe")
    expect(bypass_frame.locator("body")).to_contain_text("unsanitised-marker")
    bypass_frame.locator("#js").click()
    page.wait_for_timeout(500)

    # Notifications: assigning shows the subject in a message, as text.
    page.goto(f"{url}/emails/{hostile.pk}/")
    page.click("#assign-new button[type=submit]")
    page.wait_for_url(f"{url}/tickets/*/")
    expect(page.locator(".messages")).to_contain_text(screens.HOSTILE_SUBJECT)
    expect(page.locator("h1")).to_contain_text(screens.HOSTILE_SUBJECT)
    page.goto(f"{url}/tickets/")
    expect(page.locator("table.tickets")).to_contain_text(screens.HOSTILE_SUBJECT)

    assert page.watch.dialogs == [], page.watch.dialogs
    assert page.watch.page_errors == [], page.watch.page_errors
    assert page.watch.outside_requests == [], page.watch.outside_requests

    # Only when the agent allows images does the browser ask for them (the test harness aborts the request).
    page.goto(f"{url}/emails/{hostile.pk}/")
    page.click(f"#body-{hostile.pk} .images-blocked button")
    expect(page.locator(f"#body-{hostile.pk} .images-blocked")).to_have_count(0)
    expect(page.frame_locator(f"#body-{hostile.pk} iframe").locator("body")).to_contain_text(
        "hostile-marker-words"
    )
    page.wait_for_timeout(500)
    assert "https://evil.example.net/track.png" in page.watch.outside_requests, page.watch.outside_requests
    assert page.watch.dialogs == [], page.watch.dialogs
