"""Every setting postdesk reads from the environment, typed, documented beside its default, validated at start-up.

Django's settings module (``postdesk.settings``) is built from ``load()``; nothing else reads ``os.environ``.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit


class ConfigError(Exception):
    """A setting is missing or wrong; the message names the variable."""


# Secret keys that appear in examples and tutorials; refused unless POSTDESK_DEMO=1.
PLACEHOLDER_KEYS = {
    "",
    "changeme",
    "change-me",
    "secret",
    "demo",
    "insecure",
    "postdesk",
    "xxx",
    "django-insecure",
}


@dataclass(frozen=True)
class Config:
    data_dir: Path  # POSTDESK_DATA_DIR, default ./var: the SQLite database, job store, secret key, spool
    database_url: (
        str  # DATABASE_URL, default sqlite:///<data_dir>/postdesk.sqlite3; postgres://user:pw@host:port/db
    )
    broker_url: (
        str  # POSTDESK_BROKER_URL, default sqlite:///<data_dir>/jobs.sqlite3 (huey); redis://host:port/db
    )
    secret_key: str  # POSTDESK_SECRET_KEY, default generated into <data_dir>/secret_key on first run
    public_url: str = (
        "http://127.0.0.1:8000"  # POSTDESK_PUBLIC_URL: how customers and agents reach the web server
    )
    demo: bool = False  # POSTDESK_DEMO=1: the demo (allows a placeholder secret key)
    debug: bool = False  # POSTDESK_DEBUG=1: Django debug pages (never in production)
    allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost")  # POSTDESK_ALLOWED_HOSTS, comma-separated
    smtp_max_message_bytes: int = 35 * 1024 * 1024  # POSTDESK_SMTP_MAX_SIZE: larger messages get 552
    smtp_inflow_limit: int = 12  # POSTDESK_SMTP_INFLOW_LIMIT: spooled mail waiting for a worker before new mail is
    # slowed down (0: never)
    inbound_processes: int = 0  # POSTDESK_INBOUND_PROCESSES: processes processing spooled mail at once (0: cores)
    smtp_tls_cert: str = ""  # POSTDESK_SMTP_TLS_CERT / _KEY: enables STARTTLS on the listener
    smtp_tls_key: str = ""
    smtp_hostname: str = "postdesk.local"  # POSTDESK_SMTP_HOSTNAME: the name in the listener's greeting
    allow_private_webhooks: bool = (
        False  # POSTDESK_ALLOW_PRIVATE_WEBHOOKS=1: allow webhook targets on private addresses
    )
    sqlite_synchronous: str = (
        "FULL"  # POSTDESK_SQLITE_SYNCHRONOUS: FULL (durable across power loss) or NORMAL
    )
    log_level: str = "INFO"  # POSTDESK_LOG_LEVEL
    mass_relay: str = "127.0.0.1:25"  # POSTDESK_MASS_RELAY: HOST:PORT of the relay that carries mass email
    mass_spf: str = ""  # POSTDESK_MASS_SPF: the SPF mechanism customers publish, e.g. include:_spf.desk.example
    mass_cname_target: str = ""  # POSTDESK_MASS_CNAME_TARGET: where customers' return-path/tracking CNAME points
    dns_server: str = ""  # POSTDESK_DNS_SERVER: HOST:PORT of the resolver used to verify DNS records (default: system)
    worker_type: str = "process"  # POSTDESK_WORKER_TYPE: process (every core) or thread
    worker_count: int = 6  # POSTDESK_WORKERS: background job workers (a campaign's senders take up to four)
    extra: dict = field(default_factory=dict)

    @property
    def https(self) -> bool:
        return self.public_url.startswith("https://")

    @property
    def database_vendor(self) -> str:
        return "postgresql" if self.database_url.startswith(("postgres://", "postgresql://")) else "sqlite"


def _flag(env: dict, name: str, default: bool = False) -> bool:
    value = env.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={value!r}: expected 1/0, true/false, yes/no or on/off")


def _int(env: dict, name: str, default: int, minimum: int = 1) -> int:
    value = env.get(name)
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r}: expected a whole number")
    if number < minimum:
        raise ConfigError(f"{name}={value!r}: must be at least {minimum}")
    return number


def _choice(env: dict, name: str, choices: tuple[str, ...], default: str) -> str:
    value = (env.get(name) or default).lower()
    if value not in choices:
        raise ConfigError(f"{name}={value!r}: one of {', '.join(choices)}")
    return value


def _secret_key(env: dict, data_dir: Path, demo: bool) -> str:
    key = env.get("POSTDESK_SECRET_KEY")
    if key is not None:
        if (key.strip().lower() in PLACEHOLDER_KEYS or len(key) < 32) and not demo:
            raise ConfigError(
                "POSTDESK_SECRET_KEY is a placeholder or shorter than 32 characters; "
                "unset it to have one generated into the data directory, or set a long random value"
            )
        return key
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(48)
    tmp = path.with_name(f".secret_key.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.link(tmp, path)  # atomic: two processes starting at once agree on one key
    except FileExistsError:
        pass
    tmp.unlink(missing_ok=True)
    return path.read_text().strip()


def load(env: dict | None = None) -> Config:
    env = dict(os.environ if env is None else env)
    data_dir = Path(env.get("POSTDESK_DATA_DIR") or "./var").resolve()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"POSTDESK_DATA_DIR={str(data_dir)!r}: cannot create it ({exc.strerror})")
    demo = _flag(env, "POSTDESK_DEMO")

    database_url = env.get("DATABASE_URL") or f"sqlite:///{data_dir / 'postdesk.sqlite3'}"
    if not database_url.startswith(("sqlite:///", "postgres://", "postgresql://")):
        raise ConfigError(
            f"DATABASE_URL: unsupported scheme in {database_url.split(':', 1)[0]!r}; use sqlite:/// or postgres://"
        )
    broker_url = env.get("POSTDESK_BROKER_URL") or f"sqlite:///{data_dir / 'jobs.sqlite3'}"
    if not broker_url.startswith(("sqlite:///", "redis://", "rediss://", "memory://")):
        raise ConfigError("POSTDESK_BROKER_URL: use sqlite:///path or redis://host:port/db")

    public_url = (env.get("POSTDESK_PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/")
    if not public_url.startswith(("http://", "https://")):
        raise ConfigError(f"POSTDESK_PUBLIC_URL={public_url!r}: must start with http:// or https://")
    hosts = tuple(h.strip() for h in (env.get("POSTDESK_ALLOWED_HOSTS") or "").split(",") if h.strip())
    public_host = urlsplit(public_url).hostname or "127.0.0.1"
    allowed_hosts = tuple(dict.fromkeys((*hosts, public_host, "127.0.0.1", "localhost", "testserver")))

    sync = (env.get("POSTDESK_SQLITE_SYNCHRONOUS") or "FULL").upper()
    if sync not in ("FULL", "NORMAL", "EXTRA"):
        raise ConfigError("POSTDESK_SQLITE_SYNCHRONOUS: FULL, EXTRA or NORMAL")
    cert, key = env.get("POSTDESK_SMTP_TLS_CERT", ""), env.get("POSTDESK_SMTP_TLS_KEY", "")
    if bool(cert) != bool(key):
        raise ConfigError("POSTDESK_SMTP_TLS_CERT and POSTDESK_SMTP_TLS_KEY go together")
    for name, path in (("POSTDESK_SMTP_TLS_CERT", cert), ("POSTDESK_SMTP_TLS_KEY", key)):
        if path and not Path(path).is_file():
            raise ConfigError(f"{name}={path!r}: no such file")

    return Config(
        data_dir=data_dir,
        database_url=database_url,
        broker_url=broker_url,
        secret_key=_secret_key(env, data_dir, demo),
        public_url=public_url,
        demo=demo,
        debug=_flag(env, "POSTDESK_DEBUG"),
        allowed_hosts=allowed_hosts,
        smtp_max_message_bytes=_int(env, "POSTDESK_SMTP_MAX_SIZE", 35 * 1024 * 1024),
        smtp_inflow_limit=_int(env, "POSTDESK_SMTP_INFLOW_LIMIT", 12, minimum=0),
        inbound_processes=_int(env, "POSTDESK_INBOUND_PROCESSES", 0, minimum=0),
        smtp_tls_cert=cert,
        smtp_tls_key=key,
        smtp_hostname=env.get("POSTDESK_SMTP_HOSTNAME") or "postdesk.local",
        allow_private_webhooks=_flag(env, "POSTDESK_ALLOW_PRIVATE_WEBHOOKS"),
        sqlite_synchronous=sync,
        log_level=(env.get("POSTDESK_LOG_LEVEL") or "INFO").upper(),
        worker_type=_choice(env, "POSTDESK_WORKER_TYPE", ("process", "thread"), "process"),
        mass_relay=env.get("POSTDESK_MASS_RELAY") or "127.0.0.1:25",
        mass_spf=env.get("POSTDESK_MASS_SPF") or f"include:_spf.{urlsplit(public_url).hostname or 'localhost'}",
        mass_cname_target=env.get("POSTDESK_MASS_CNAME_TARGET") or (urlsplit(public_url).hostname or "localhost"),
        dns_server=env.get("POSTDESK_DNS_SERVER") or "",
        worker_count=_int(env, "POSTDESK_WORKERS", 6),
    )


def database_settings(config: Config) -> dict:
    """Django's DATABASES['default'] for the configured URL."""
    url = config.database_url
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": path,
            # no memory-mapped I/O (mmap_size stays 0): when another process shrinks the file (retention's VACUUM
            # and checkpoint), a process with the file mapped gets SIGBUS (seen in the test suite)
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                "init_command": (
                    "PRAGMA journal_mode=WAL;"
                    f"PRAGMA synchronous={config.sqlite_synchronous};"
                    "PRAGMA secure_delete=ON;"
                    "PRAGMA cache_size=-65536;"
                    "PRAGMA temp_store=MEMORY;"
                ),
            },
            "TEST": {"NAME": str(config.data_dir / "test.sqlite3")},
            "CONN_MAX_AGE": None,  # a local file: keep connections (opening one runs the PRAGMAs above)
        }
    parts = urlsplit(url)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")) or "postdesk",
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
        # no JIT compilation: it pays off for long analytical queries; here it added ~10 ms to queries the planner
        # costed high but that run in a few (a lateral join over a thousand senders)
        "OPTIONS": {"connect_timeout": 10, "options": "-c jit=off"},
    }
