"""Settings for the test suite: a throw-away data directory, jobs run inline after commit, fast password hashing."""

import os
import tempfile

os.environ.setdefault("POSTDESK_DATA_DIR", tempfile.mkdtemp(prefix="postdesk-test-"))
os.environ.setdefault("POSTDESK_SQLITE_SYNCHRONOUS", "NORMAL")
os.environ.setdefault("POSTDESK_BROKER_URL", "memory://")

from postdesk.settings import *  # noqa: E402,F403

JOBS_IMMEDIATE = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
