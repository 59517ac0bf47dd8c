"""A tiny append-only journal that survives the sending process being killed (kill -9): before a message's content
is transmitted the sender appends "<id> data", after the relay's 250 "<id> ok". An email found in state 'sending' at
recovery was interrupted: without a 'data' line it certainly did not go and is retried; with one, the relay may have
accepted it, so it is not sent again (marked sent, unconfirmed). Writes go to the OS page cache (no fsync): they
survive a process crash, which is the case this is for; the database records the confirmed outcome."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from django.conf import settings

_lock = threading.Lock()
_fd: int | None = None


def _path() -> Path:
    folder = settings.CONFIG.data_dir / "journal"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"outbound-{os.getpid()}.log"


def record(email_id: int, what: str) -> None:
    global _fd
    with _lock:
        if _fd is None:
            _fd = os.open(_path(), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.write(_fd, f"{email_id} {what}\n".encode())


def started_ids() -> set[int]:
    """Ids whose content transmission started, from every process's journal."""
    folder = settings.CONFIG.data_dir / "journal"
    ids: set[int] = set()
    if not folder.is_dir():
        return ids
    for path in folder.glob("outbound-*.log"):
        try:
            for line in path.read_text(errors="replace").splitlines():
                number, _, what = line.partition(" ")
                if number.isdigit() and what in ("data", "ok"):
                    ids.add(int(number))
        except OSError:
            continue
    return ids


def prune(active_pids: set[int] | None = None) -> None:
    """Remove journals of processes that are gone (called after recovery has read them)."""
    folder = settings.CONFIG.data_dir / "journal"
    if not folder.is_dir():
        return
    for path in folder.glob("outbound-*.log"):
        pid = path.stem.split("-", 1)[1]
        if pid.isdigit() and int(pid) != os.getpid() and (active_pids is None or int(pid) not in active_pids):
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                path.unlink(missing_ok=True)
            except PermissionError:
                pass
