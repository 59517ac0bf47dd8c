import stat

import pytest

from postdesk import conf


def test_it_generates_a_secret_key_into_the_data_directory_once(tmp_path):
    first = conf.load({"POSTDESK_DATA_DIR": str(tmp_path)})
    second = conf.load({"POSTDESK_DATA_DIR": str(tmp_path)})
    assert len(first.secret_key) >= 48
    assert first.secret_key == second.secret_key
    assert stat.S_IMODE((tmp_path / "secret_key").stat().st_mode) == 0o600


@pytest.mark.parametrize("key", ["changeme", "secret", "demo", "short-key"])
def test_it_refuses_a_placeholder_secret_key_outside_the_demo(tmp_path, key):
    with pytest.raises(conf.ConfigError, match="POSTDESK_SECRET_KEY"):
        conf.load({"POSTDESK_DATA_DIR": str(tmp_path), "POSTDESK_SECRET_KEY": key})


def test_it_accepts_a_placeholder_key_in_the_demo(tmp_path):
    config = conf.load(
        {"POSTDESK_DATA_DIR": str(tmp_path), "POSTDESK_SECRET_KEY": "demo", "POSTDESK_DEMO": "1"}
    )
    assert config.secret_key == "demo"


def test_it_defaults_to_sqlite_in_wal_mode_in_the_data_directory(tmp_path):
    config = conf.load({"POSTDESK_DATA_DIR": str(tmp_path)})
    db = conf.database_settings(config)
    assert db["ENGINE"] == "django.db.backends.sqlite3"
    assert db["NAME"] == str(tmp_path / "postdesk.sqlite3")
    assert "journal_mode=WAL" in db["OPTIONS"]["init_command"]
    assert config.broker_url == f"sqlite:///{tmp_path / 'jobs.sqlite3'}"


def test_it_reads_a_postgres_url(tmp_path):
    config = conf.load(
        {"POSTDESK_DATA_DIR": str(tmp_path), "DATABASE_URL": "postgres://pd:p%40ss@db.local:5433/postdesk"}
    )
    db = conf.database_settings(config)
    assert (db["ENGINE"], db["USER"], db["PASSWORD"], db["HOST"], db["PORT"], db["NAME"]) == (
        "django.db.backends.postgresql",
        "pd",
        "p@ss",
        "db.local",
        "5433",
        "postdesk",
    )


@pytest.mark.parametrize(
    "env, message",
    [
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"POSTDESK_BROKER_URL": "amqp://x"}, "POSTDESK_BROKER_URL"),
        ({"POSTDESK_SMTP_MAX_SIZE": "lots"}, "POSTDESK_SMTP_MAX_SIZE"),
        ({"POSTDESK_PUBLIC_URL": "ftp://x"}, "POSTDESK_PUBLIC_URL"),
        ({"POSTDESK_SMTP_TLS_CERT": "/nonexistent.pem"}, "POSTDESK_SMTP_TLS"),
        ({"POSTDESK_DEBUG": "maybe"}, "POSTDESK_DEBUG"),
    ],
)
def test_it_names_the_variable_that_is_wrong(tmp_path, env, message):
    with pytest.raises(conf.ConfigError, match=message):
        conf.load({"POSTDESK_DATA_DIR": str(tmp_path), **env})


def test_it_uses_secure_cookies_when_served_over_https(tmp_path):
    assert conf.load(
        {"POSTDESK_DATA_DIR": str(tmp_path), "POSTDESK_PUBLIC_URL": "https://desk.acme.test"}
    ).https
    assert not conf.load({"POSTDESK_DATA_DIR": str(tmp_path)}).https
