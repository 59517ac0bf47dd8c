"""The rules of the tutorial's 'Email handling' section and the project structure, written once and used by every
front end: the supervisor UI (forms), the API (schemas) and `postdesk apply`. Each rule raises Invalid naming the field."""

from __future__ import annotations

import re

from postdesk.core.errors import Invalid

LIST_SIZE_MIN, LIST_SIZE_MAX = 1, 250
AUTO_DELETE_MIN_DAYS = 30
PROJECT_KEY_RE = re.compile(r"^[A-Za-z0-9]{1,20}$")
SKILL_MIN, SKILL_MAX = 1, 10
LANGUAGE_RE = re.compile(r"^[a-z]{2,3}$")


def check_project_key(key: str, field: str = "key") -> str:
    key = str(key)
    if not PROJECT_KEY_RE.match(key):
        raise Invalid(
            "must be 1 to 20 letters or digits (it is the xxx of ticket numbers xxx-YYYYMMDD-zzzzzz)",
            field=field,
        )
    return key


def check_list_size(value, field: str = "list_size") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid("must be a whole number between 1 and 250", field=field)
    if not LIST_SIZE_MIN <= value <= LIST_SIZE_MAX:
        raise Invalid(f"must be between {LIST_SIZE_MIN} and {LIST_SIZE_MAX} (got {value})", field=field)
    return value


def check_email_queue(language_detection: bool, email_queue: bool, field: str = "email_queue") -> None:
    if email_queue and not language_detection:
        raise Invalid("the Email queue setting needs Email language detection to be on", field=field)


def check_auto_delete_days(value, field: str = "auto_delete_days"):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid("must be empty or a whole number of days (at least 30)", field=field)
    if value < AUTO_DELETE_MIN_DAYS:
        raise Invalid(f"must be empty or at least {AUTO_DELETE_MIN_DAYS} days (got {value})", field=field)
    return value


def check_skill_level(value, field: str = "level") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not SKILL_MIN <= value <= SKILL_MAX:
        raise Invalid(f"skill level must be a whole number from {SKILL_MIN} to {SKILL_MAX}", field=field)
    return value


def check_language(value: str, field: str = "language") -> str:
    from postdesk.inbound.languages import LANGUAGE_NAMES

    value = (value or "").strip().lower()
    if not LANGUAGE_RE.match(value) or value not in LANGUAGE_NAMES:
        raise Invalid(f"unknown language {value!r}: use an ISO 639-1 code such as en, hu, de", field=field)
    return value


def check_name(value, field: str, *, max_length: int, empty: str = "must not be empty") -> str:
    """A name or label: text, stripped, not empty, no line breaks, at most `max_length` characters."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise Invalid("must be text", field=field)
    value = value.strip()
    if not value:
        raise Invalid(empty, field=field)
    if len(value) > max_length:
        raise Invalid(f"must be at most {max_length} characters", field=field)
    if any(c in value for c in "\r\n\0"):
        raise Invalid("must not contain line breaks", field=field)
    return value


def settings_problems(values: dict, prefix: str = "") -> list[Invalid]:
    """Every email-handling rule that one complete set of settings breaks (empty: none), so a form can show them
    all at once."""
    p = f"{prefix}." if prefix else ""
    checks = (
        lambda: check_list_size(values["list_size"], f"{p}list_size"),
        lambda: check_email_queue(values["language_detection"], values["email_queue"], f"{p}email_queue"),
        lambda: check_auto_delete_days(values["auto_delete_days"], f"{p}auto_delete_days"),
    )
    problems = []
    for check in checks:
        try:
            check()
        except Invalid as exc:
            problems.append(exc)
    return problems


def check_settings(values: dict, prefix: str = "") -> None:
    """All email-handling rules over one complete set of settings (after merging changes into current values)."""
    problems = settings_problems(values, prefix)
    if problems:
        raise problems[0]


SETTING_FIELDS = (
    "list_size",
    "lock_emails",
    "change_pref_user",
    "agents_create_records",
    "search",
    "shared_tickets",
    "display_address",
    "display_template_cc",
    "display_template_bcc",
    "language_detection",
    "email_queue",
    "auto_delete_days",
)
