"""Per-key locks, so work on one app is serialized while different apps run in parallel."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator


class KeyedLocks:
    """A lock per key (app name), created on demand and kept for the agent's lifetime.

    App names are few and bounded, so never discarding the locks is simpler and safer than
    reference counting them.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def get(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        lock = self.get(key)
        with lock:
            yield
