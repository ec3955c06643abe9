"""Writing files that hold secrets (join and API tokens): mode 0600 from the first byte, atomic."""

from __future__ import annotations

from pathlib import Path

from common.files import write_atomic


def write_private(path: Path, content: str) -> None:
    write_atomic(path, content, mode=0o600)
