"""A tiny append-only journal that survives the sending process being killed (kill -9): before a message's content
is transmitted the sender appends "<id> data", after the relay's 250 "<id> ok". An email found in state 'sending' at
recovery was interrupted: without a 'data' line it certainly did not go and is retried; with one, the relay may have
accepted it, so it is not sent again (marked sent, unconfirmed). Writes go to the OS page cache (no fsync): they
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
        os.write(_fd, f"{email_id} {what}\n".encode())


def started_ids() -> set[int]:
    """Ids whose content transmission started, from every process's journal."""
    ids: set[int] = set()
    for path in folder().glob("outbound-*.log"):
        try:
            for line in path.read_text(errors="replace").splitlines():
                number, _, what = line.partition(" ")
                if number.isdigit() and what in ("data", "ok"):
                    ids.add(int(number))
        except OSError:
            continue
    return ids


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
