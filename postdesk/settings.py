"""Django settings, built from the typed environment in ``postdesk.conf`` (edit that module, not this one)."""

import sys

from postdesk import conf

try:
    CONFIG = conf.load()
except conf.ConfigError as exc:  # a clear message instead of a traceback at start-up
    sys.stderr.write(f"postdesk: configuration error: {exc}\n")
    raise SystemExit(2)

BASE_DIR = CONFIG.data_dir
SECRET_KEY = CONFIG.secret_key
DEBUG = CONFIG.debug
ALLOWED_HOSTS = list(CONFIG.allowed_hosts)
CSRF_TRUSTED_ORIGINS = [CONFIG.public_url]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "postdesk.core",
    "postdesk.accounts",
    "postdesk.projects",
    "postdesk.mailboxes",
    "postdesk.records",
    "postdesk.tickets",
    "postdesk.emails",
    "postdesk.inbound",
    "postdesk.outbound",
    "postdesk.campaigns",
    "postdesk.reports",
    "postdesk.retention",
    "postdesk.integrations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "postdesk.core.middleware.SecurityHeadersMiddleware",
    "postdesk.core.middleware.RejectNulMiddleware",
]

ROOT_URLCONF = "postdesk.urls"
WSGI_APPLICATION = "postdesk.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "postdesk.core.context.navigation",
            ],
        },
    },
]

DATABASES = {"default": conf.database_settings(CONFIG)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = CONFIG.data_dir / "static"
STATIC_ROOT.mkdir(exist_ok=True)
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Cookies and transport security: secure cookies and HSTS when served over HTTPS (POSTDESK_PUBLIC_URL=https://...).
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = CONFIG.https
CSRF_COOKIE_SECURE = CONFIG.https
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if CONFIG.https else None
SECURE_HSTS_SECONDS = 31536000 if CONFIG.https else 0
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "SAMEORIGIN"
DATA_UPLOAD_MAX_MEMORY_SIZE = CONFIG.smtp_max_message_bytes + 1024 * 1024

# Background jobs (huey): the job store comes from POSTDESK_BROKER_URL; see postdesk/core/jobs.py.
JOBS_IMMEDIATE = False  # tests switch this on: jobs run inline, after the commit that queued them
JOBS_WORKERS = CONFIG.worker_count
JOBS_WORKER_TYPE = CONFIG.worker_type

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": CONFIG.log_level},
    "loggers": {
        "huey": {"level": "WARNING"},
        "mail.log": {"level": "WARNING"},
        "django.db.backends": {"level": "WARNING"},
    },
}

NINJA_PAGINATION_MAX_LIMIT = 500
