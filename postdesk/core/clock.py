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


def as_utc(moment: dt.datetime) -> dt.datetime:
    """The same moment in UTC (naive values are taken as UTC). Databases store UTC: PostgreSQL refuses offsets beyond
    +-15:59, which Python accepts. ValueError when the moment has no UTC equivalent (e.g. year 9999 at -10:00)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("the moment is out of range in UTC") from None


def parse_iso(value: str) -> dt.datetime:
    """An ISO 8601 moment in UTC; naive values are taken as UTC."""
    return as_utc(dt.datetime.fromisoformat(value.replace("Z", "+00:00")))
