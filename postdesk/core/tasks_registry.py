"""Imports every app's tasks module (so the worker knows all jobs) and runs their start-up recovery hooks: each app may
define `recover()` in its tasks module, which re-queues work that was stored but never finished (e.g. mail
acknowledged with 250 just before a crash)."""

import importlib
import logging

log = logging.getLogger(__name__)

APPS = ("inbound", "outbound", "campaigns", "integrations", "retention", "reports", "emails", "tickets")


def load_all() -> list:
    modules = []
    for app in APPS:
        try:
            modules.append(importlib.import_module(f"postdesk.{app}.tasks"))
        except ModuleNotFoundError as exc:
            if exc.name != f"postdesk.{app}.tasks":
                raise
    return modules


def recover() -> None:
    for module in load_all():
        hook = getattr(module, "recover", None)
        if hook is None:
            continue
        try:
            hook()
        except Exception:
            log.exception("recovery of %s failed", module.__name__)
