"""Browser tests: Playwright for Python driving Debian's chromium (/usr/bin/chromium; Playwright never downloads a
browser here). Every page records the dialogs it opened, its console errors and any request that tried to leave
127.0.0.1 (such requests are aborted), so tests can assert that hostile mail ran nothing and fetched nothing."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest

CHROMIUM = os.environ.get("POSTDESK_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


def require_browser() -> str:
    path = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if not path:
        reason = f"chromium not found at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("POSTDESK_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@dataclass
class Watch:
    dialogs: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)


def watch(page) -> Watch:
    seen = Watch()

    def on_dialog(dialog):
        seen.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def route(route):
        host = urlsplit(route.request.url).hostname or ""
        if route.request.url.startswith(("data:", "blob:", "about:")) or host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            seen.outside_requests.append(route.request.url)
            route.abort()

    page.on("dialog", on_dialog)
    page.on("console", lambda m: seen.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen.page_errors.append(str(e)))
    page.context.route("**/*", route)
    page.watch = seen
    return seen


def login(page, base_url: str, username: str, password: str | None = None) -> None:
    page.goto(f"{base_url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password or f"{username}-password")
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
