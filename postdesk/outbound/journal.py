"""A tiny append-only journal that survives the sending process being killed (kill -9): before a message's content
is transmitted the sender appends "<id> data", after the relay's 250 "<id> ok", after a definite refusal of the
content (a 4xx/5xx answer to the end of data) "<id> refused"; each line carries its time. An email found in state
'sending' at recovery was interrupted: when its latest line is 'data' or 'ok' the relay may have accepted it, so it is
not sent again (marked sent, unconfirmed); otherwise (no line, or its last attempt was refused) it certainly did not
go and is retried. Writes go to the OS page cache (no fsync): they
survive a process crash, which is the case this is for; the database records the confirmed outcome.

One file per process and hour; files older than a day are removed (recovery only needs the last minutes)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from django.conf import settings

_lock = threading.Lock()
_fd: int | None = None
_fd_name: str | None = None
KEEP_SECONDS = 24 * 3600


def folder() -> Path:
    path = settings.CONFIG.data_dir / "journal"
    path.mkdir(parents=True, exist_ok=True)
    return path


def record(email_id: int, what: str) -> None:
    global _fd, _fd_name
    name = f"outbound-{os.getpid()}-{int(time.time()) // 3600}.log"
    with _lock:
        if _fd is None or _fd_name != name:
            if _fd is not None:
                os.close(_fd)
            _fd = os.open(folder() / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            _fd_name = name
        os.write(_fd, f"{email_id} {what} {time.time_ns()}\n".encode())


def started_ids() -> set[int]:
    """Ids whose latest attempt, over every process's journal, started transmitting the content and was not refused."""
    latest: dict[int, tuple[int, str]] = {}
    for path in folder().glob("outbound-*.log"):
        try:
            for line in path.read_text(errors="replace").splitlines():
                number, _, rest = line.partition(" ")
                what, _, stamp = rest.partition(" ")
                if not number.isdigit() or what not in ("data", "ok", "refused"):
                    continue
                moment = int(stamp) if stamp.isdigit() else 0
                key = int(number)
                if key not in latest or moment >= latest[key][0]:
                    latest[key] = (moment, what)
        except OSError:
            continue
    return {key for key, (_, what) in latest.items() if what != "refused"}


def prune() -> None:
    """Remove journal files older than a day."""
    cutoff = time.time() - KEEP_SECONDS
    for path in folder().glob("outbound-*.log"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:
            continue


def reset() -> None:
    """Forget everything (tests: database ids are reused after a rollback)."""
    global _fd, _fd_name
    with _lock:
        if _fd is not None:
            os.close(_fd)
        _fd, _fd_name = None, None
        for path in folder().glob("outbound-*.log"):
            path.unlink(missing_ok=True)
