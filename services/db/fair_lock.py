"""A re-entrant lock that is handed to its waiters in the order they came.

Why not threading.RLock: it is not fair. When its holder releases it, whichever thread runs
first takes it, often the releaser itself coming back for its next write, or a thread that just
arrived, so a waiter can lose many times in a row. Under 20 concurrent CreateDeployment calls on
SQLite (one writer at a time) that unfairness, not the work, made the slowest 1% of calls wait
several times longer than the median. Here the holder hands the lock directly to the oldest
waiter, so a write waits only for the writes that arrived before it.
"""

from __future__ import annotations

import threading
from collections import deque


class FairRLock:
    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._owner: int | None = None
        self._depth = 0
        self._waiters: deque[tuple[int, threading.Lock]] = deque()

    def acquire(self) -> None:
        me = threading.get_ident()
        with self._mutex:
            if self._owner == me:
                self._depth += 1
                return
            if self._owner is None:
                self._owner, self._depth = me, 1
                return
            turn = threading.Lock()
            turn.acquire()
            self._waiters.append((me, turn))
        turn.acquire()  # released by the holder once it made this thread the owner

    def release(self) -> None:
        with self._mutex:
            if self._owner != threading.get_ident():
                raise RuntimeError("cannot release a lock held by another thread")
            self._depth -= 1
            if self._depth:
                return
            if self._waiters:
                self._owner, turn = self._waiters.popleft()
                self._depth = 1
                turn.release()
            else:
                self._owner = None

    def __enter__(self) -> "FairRLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
