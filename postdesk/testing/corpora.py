"""Where the shared real-world corpora live (never copied into this repository).

Tests read the folder named by ``POSTDESK_CORPORA`` (default: ``../shared/corpora`` from the project root) and skip with
a clear reason when it is absent. CI sets ``POSTDESK_REQUIRE_CORPORA=1`` so that a missing folder fails instead.
"""

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def corpora_dir() -> Path:
    return Path(os.environ.get("POSTDESK_CORPORA", PROJECT_ROOT.parent / "shared" / "corpora"))


def corpus(name: str) -> Path:
    """The path of one corpus folder, or skip the test (fail under POSTDESK_REQUIRE_CORPORA=1) when it is absent."""
    path = corpora_dir() / name
    if not path.is_dir():
        reason = f"corpus {name!r} not found at {path} (set POSTDESK_CORPORA)"
        if os.environ.get("POSTDESK_REQUIRE_CORPORA") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path
