"""Where the shared real-world corpora live (never copied into this repository).

Tests read the folder named by ``POSTDESK_CORPORA`` (default: ``../shared/corpora`` from the project root, or the
nearest ``shared/corpora`` further up) and skip with
a clear reason when it is absent. CI sets ``POSTDESK_REQUIRE_CORPORA=1`` so that a missing folder fails instead.
"""

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def corpora_dir() -> Path:
    """POSTDESK_CORPORA, else ../shared/corpora from the project root, else the nearest shared/corpora above it
    (a clone made deeper in the same workspace still finds them)."""
    if os.environ.get("POSTDESK_CORPORA"):
        return Path(os.environ["POSTDESK_CORPORA"])
    for folder in PROJECT_ROOT.parents:
        candidate = folder / "shared" / "corpora"
        if candidate.is_dir():
            return candidate
    return PROJECT_ROOT.parent / "shared" / "corpora"


def corpus(name: str) -> Path:
    """The path of one corpus folder, or skip the test (fail under POSTDESK_REQUIRE_CORPORA=1) when it is absent."""
    path = corpora_dir() / name
    if not path.is_dir():
        reason = f"corpus {name!r} not found at {path} (set POSTDESK_CORPORA)"
        if os.environ.get("POSTDESK_REQUIRE_CORPORA") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path
