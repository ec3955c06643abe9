"""Atomic file writes: the one writer for secrets, certificates, routes and proxy config.

A reader (or a restart after a crash) sees either the old file or the new one, never a torn
write: the data goes to a temp file in the same folder (so the rename stays on one file system),
is fsynced, then renamed over the target, and the folder is fsynced so the rename survives a
power loss. The temp file has its final mode from the first byte, so a secret is never readable
by others even for a moment, and it is removed if anything fails.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: str | Path, data: bytes | str, mode: int = 0o600) -> None:
    """Replace `path` with `data` (str is written as UTF-8), leaving the file at `mode`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
