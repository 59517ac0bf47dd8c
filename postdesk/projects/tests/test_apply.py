"""`postdesk apply`: idempotent, all-or-nothing, and every rule refused with the field named."""

import copy
from pathlib import Path

import pytest
import yaml
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError

from postdesk.projects.config import ConfigFileError, apply
from postdesk.projects.config import parse as parse_config
from postdesk.projects.models import AgentQueueSkill, Project, Queue

DEMO = Path(__file__).resolve().parents[3] / "demo" / "config.yaml"


def demo() -> dict:
    return yaml.safe_load(DEMO.read_text())


def run(data: dict) -> list[str]:
    return apply(parse_config(yaml.safe_dump(data, allow_unicode=True)))


def snapshot() -> dict:
    state = {}
    for model in apps.get_models():
        if model._meta.app_label in ("sessions", "contenttypes", "auth"):
            continue
        state[model._meta.label] = sorted(map(repr, model.objects.values_list()))
    return state


@pytest.mark.django_db
def test_applying_the_demo_twice_changes_nothing_the_second_time(capsys):
    call_command("apply", str(DEMO))
    first = capsys.readouterr().out
    assert "+ project 101" in first and "+ user anna" in first
    call_command("apply", str(DEMO))
    assert capsys.readouterr().out.strip() == "nothing changed"


@pytest.mark.django_db
def test_it_builds_the_project_the_file_describes():
    run(demo())
    project = Project.objects.get(key="101")
    assert project.list_size == 50 and project.email_queue and project.auto_response_template.name == "ack"
    assert sorted(project.queues.values_list("name", "language", "is_default")) == [
        ("Default", "", True),
        ("English", "en", False),
        ("Magyar", "hu", False),
    ]
    assert AgentQueueSkill.objects.get(user__username="bence", queue__name="Magyar").level == 5
    assert [a.name for a in project.sender_accounts.all()] == ["support-out"]
    assert project.inbound_accounts.get().address == "support@acme.test"
    assert sorted(project.ticket_types.values_list("export_value", flat=True)) == [
        "COMPLAINT",
        "FINANCE",
        "TECH",
    ]


@pytest.mark.django_db
def test_it_prints_only_what_changed():
    run(demo())
    data = demo()
    data["projects"][0]["email"]["list_size"] = 120
    data["projects"][0]["queues"]["default_name"] = "General"
    for agent in data["projects"][0]["agents"]:
        agent["queues"]["General"] = agent["queues"].pop("Default")
    changes = run(data)
    assert changes == ["~ queue 'Default' renamed 'General'", "~ project 101: list_size 50 -> 120"]
    assert Queue.objects.get(project__key="101", is_default=True).name == "General"


def _set(data: dict, path: str, value):
    node = data
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node[part]
    last = parts[-1]
    if value is _DELETE:
        del node[last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value


_DELETE = object()

INVALID = [
    ("projects.0.email.list_size", 0, "projects[0].email.list_size"),
    ("projects.0.email.list_size", 251, "projects[0].email.list_size"),
    ("projects.0.email.list_size", "fifty", "projects[0].email.list_size"),
    ("projects.0.email.language_detection", False, "projects[0].email.email_queue"),
    ("projects.0.email.auto_delete_days", 29, "projects[0].email.auto_delete_days"),
    ("projects.0.email.auto_delete_days", 0, "projects[0].email.auto_delete_days"),
    ("projects.0.email.auto_response_template", "missing", "projects[0].email.auto_response_template"),
    ("projects.0.sender_accounts", ["nope"], "projects[0].sender_accounts[0]"),
    ("projects.0.sender_accounts", ["support-in"], "projects[0].sender_accounts[0]"),
    ("projects.0.agents.0.username", "nobody", "projects[0].agents[0].username"),
    ("projects.0.agents.0.queues", {"Klingon": 3}, "projects[0].agents[0].queues.Klingon"),
    ("projects.0.agents.0.queues", {"English": 0}, "projects[0].agents[0].queues.English"),
    ("projects.0.queues.default_name", "General", "projects[0].agents[0].queues.Default"),
    ("projects.0.queues.languages.1.language", "xx", "projects[0].queues.languages[1].language"),
    ("projects.0.queues.languages.1.name", "English", "projects[0].queues.languages"),
    ("projects.0.key", "1 0 1", "projects[0].key"),
    ("projects.0.templates.1.name", "ack", "projects[0].templates"),
    ("users.0.role", "admin", "users[0].role"),
    ("users.1.username", "sophie", "users"),
    ("accounts.0.protocol", "imap", "accounts[0].protocol"),
    ("accounts.0.project", "999", "accounts[0].project"),
    ("accounts.0.address", "not-an-address", "accounts[0].address"),
    ("accounts.1.security", "ssl3", "accounts[1].security"),
    ("accounts.1.auth", "kerberos", "accounts[1].auth"),
    ("accounts.1.port", 70000, "accounts[1].port"),
    ("accounts.1.name", "support-in", "accounts"),
    ("projects.0.templates.0.subject", "Hi\r\nBcc: victim@evil.test", "subject"),
    (
        "projects.0.webhooks",
        [{"url": "http://127.0.0.1:9/hook", "events": ["email"], "secret": "s" * 20}],
        "projects[0].webhooks[0].url",
    ),
    (
        "projects.0.webhooks",
        [{"url": "https://crm.acme.test/h", "events": ["calls"], "secret": "s" * 20}],
        "projects[0].webhooks[0].events",
    ),
    ("projects.0.colour", "blue", "projects[0].colour"),
]


@pytest.mark.django_db
@pytest.mark.parametrize("path, value, field", INVALID, ids=[f"{p}={v!r}"[:60] for p, v, _ in INVALID])
def test_an_invalid_file_is_refused_naming_the_field_and_changes_nothing(path, value, field):
    run(demo())
    before = snapshot()
    data = copy.deepcopy(demo())
    data["projects"][0]["email"]["list_size"] = 99  # a valid change that must not be applied either
    _set(data, path, value)
    with pytest.raises(ConfigFileError) as error:
        run(data)
    assert field in str(error.value)
    assert snapshot() == before


@pytest.mark.django_db
def test_the_command_exits_non_zero_naming_the_field(tmp_path):
    bad = demo()
    bad["projects"][0]["email"]["list_size"] = 500
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(CommandError, match=r"projects\[0\]\.email\.list_size"):
        call_command("apply", str(path))
    assert not Project.objects.exists()


@pytest.mark.django_db
def test_json_is_accepted_as_yaml(tmp_path):
    import json

    path = tmp_path / "config.json"
    path.write_text(
        json.dumps({"users": [{"username": "zed", "password": "long-password", "role": "agent"}]})
    )
    call_command("apply", str(path))
    assert apps.get_model("accounts", "User").objects.filter(username="zed", role="agent").exists()
