"""One HAProxy reload for every change saved while the previous one ran (a group commit).

A reload renders the whole config from the stored routes, so one reload carries every route saved
before it started. When many apps are added at once (fifty first deploys), each caller waiting for a
reload of its own queued fifty reloads one after the other, each waiting for a new worker to come
up; on a busy machine the last ones ran out of time. Here a caller saves its change, takes a ticket,
and waits for a reload that started after its ticket: the first waiter runs one reload (holding the
router's lock, as every reload does), which covers every ticket taken before it started, and the
callers that came meanwhile share the next one.

Callers that came meanwhile are blocked on the router's lock while a reload holds it, and a lock
is not fair: measured under load, the caller that took the next ticket often won the lock back
before the others could save, and twenty apps made twenty reloads. So a caller announces itself
(`arriving`) before it waits for the lock, and a leader waits, briefly, until every announced
caller has taken its ticket: one reload then carries every change that arrived together.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class ReloadGroup:
    # Outcomes of this many recent reloads are kept for the callers that wait on them.
    KEPT = 64
    # How long a leader waits for announced callers to take their tickets.
    GATHER_SECONDS = 1.0

    def __init__(self, lock: threading.RLock, reload: Callable[[], None]):
        """`lock` is the router's lock: the reload runs holding it; `reload` raises on failure."""
        self._router_lock = lock
        self._reload = reload
        self._cv = threading.Condition()
        self._taken = 0        # tickets handed out: one per saved change
        self._covered = 0      # every ticket up to this one is in a finished reload
        self._leading = False  # a caller is running a reload now
        self._arriving = 0     # callers between `arriving()` and their ticket
        self._outcomes: deque[tuple[int, int, BaseException | None]] = deque(maxlen=self.KEPT)

    @contextmanager
    def arriving(self) -> Iterator[None]:
        """Around a caller's wait for the router's lock and its save (see module docstring)."""
        with self._cv:
            self._arriving += 1
        try:
            yield
        finally:
            with self._cv:
                self._arriving -= 1
                self._cv.notify_all()

    def ticket(self) -> int:
        """Call holding the router's lock, right after saving the change a reload must carry."""
        with self._cv:
            self._taken += 1
            return self._taken

    def wait(self, ticket: int) -> None:
        """Returns once a reload that carries `ticket` succeeded; raises its error if it failed.
        Call WITHOUT holding the router's lock (the reload that carries it needs that lock)."""
        with self._cv:
            while self._covered < ticket and self._leading:
                self._cv.wait()
            if self._covered >= ticket:
                return self._outcome(ticket)
            self._leading = True
            self._cv.wait_for(lambda: self._arriving == 0, timeout=self.GATHER_SECONDS)
        error: BaseException | None = None
        covered = ticket
        try:
            with self._router_lock:
                with self._cv:
                    covered = self._taken  # every change saved so far is rendered by this reload
                try:
                    self._reload()
                except Exception as exc:
                    error = exc
        finally:
            with self._cv:
                self._outcomes.append((self._covered, covered, error))
                self._covered = covered
                self._leading = False
                self._cv.notify_all()
        if error is not None:
            raise error

    def _outcome(self, ticket: int) -> None:
        for after, upto, error in reversed(self._outcomes):
            if after < ticket <= upto:
                if error is not None:
                    raise error
                return
        return  # older than every kept outcome: it was carried long ago
