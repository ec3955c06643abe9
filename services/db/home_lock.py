"""The single-instance lock of a SQLite home: one `serversinc-api` process per database.

SQLite means one control-plane process: at start it makes every claimed job claimable again
(their holder must be gone), so a second process on the same home would run deployments the
first one is running. The lock is an exclusive `flock` on `<home>/api.lock`, held for the life of
the process; the kernel drops it when the process ends in any way (SIGKILL included), so a stale
file never blocks a restart. The holder's pid is written into the file for the refusal message.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = "api.lock"


class HomeLocked(Exception):
    """Another process holds the home's lock."""

    def __init__(self, path: Path, pid: int | None):
        holder = f"process {pid}" if pid else "another process"
        super().__init__(f"{holder} already runs a control plane on {path.parent} (lock {path}); "
                         "stop it first, or give this one its own SERVERSINC_HOME")
        self.pid = pid


class HomeLock:
    def __init__(self, fd: int, path: Path):
        self._fd = fd
        self.path = path

    @classmethod
    def acquire(cls, home: Path) -> "HomeLock":
        """Takes the lock without waiting; raises HomeLocked naming the holder's pid if known."""
        home.mkdir(parents=True, exist_ok=True)
        path = home / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise HomeLocked(path, pid) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(fd, path)

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = -1


def _read_pid(fd: int) -> int | None:
    raw = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return int(raw) if raw.isdigit() else None
