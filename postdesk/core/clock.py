"""The one clock. Always timezone-aware UTC. Tests move it with ``frozen(...)`` or ``advance(...)``."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading

UTC = dt.UTC
_lock = threading.Lock()
_fixed: dt.datetime | None = None


def now() -> dt.datetime:
    fixed = _fixed
    if fixed is not None:
        return fixed
    return dt.datetime.now(UTC)


def today() -> dt.date:
    return now().date()


def set_now(moment: dt.datetime | None) -> None:
    """Fix the clock at ``moment`` (aware), or let it run again with None."""
    global _fixed
    if moment is not None and moment.tzinfo is None:
        raise ValueError("the clock only holds timezone-aware datetimes")
    with _lock:
        _fixed = moment.astimezone(UTC) if moment is not None else None


def advance(delta: dt.timedelta) -> dt.datetime:
    set_now(now() + delta)
    return now()


@contextlib.contextmanager
def frozen(moment: dt.datetime):
    previous = _fixed
    set_now(moment)
    try:
        yield
    finally:
        set_now(previous)


def parse_iso(value: str) -> dt.datetime:
    """An ISO 8601 moment; naive values are taken as UTC."""
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
