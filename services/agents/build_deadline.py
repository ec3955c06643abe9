"""A build's deadline that stops while the agent says the build waits for a build slot.

An agent runs at most TUGBOAT_BUILD_CONCURRENCY builds at once; the others wait their turn. A
deadline that went on through the wait failed builds for the time other apps' builds took (ten
apps pushed at once, builds of two minutes each, a deadline of fifteen: the last ones failed
"build exceeded its deadline" before their first step). So the build's own seconds count only
while it is not waiting, and the wait has a bound of its own (a queue that never moves, an agent
that stopped answering, still ends).

Plain logic over a timer, so a test drives it with a fake timer and clock; the gRPC client
(services.agents.client) feeds it the agent's `waiting_for_slot` events and cancels its call when
it expires.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

BUILD = "build"
SLOT_WAIT = "slot wait"


class BuildDeadline:
    """Calls `expire` once: `build_seconds` of not waiting, or `slot_wait_seconds` of one wait,
    whichever comes first; `expired` then says which (BUILD or SLOT_WAIT)."""

    def __init__(self, build_seconds: float, slot_wait_seconds: float, expire: Callable[[], None], *,
                 clock: Callable[[], float] = time.monotonic, timer=threading.Timer) -> None:
        self._left = build_seconds
        self._slot_wait = slot_wait_seconds
        self._expire = expire
        self._clock = clock
        self._timer_factory = timer
        self._lock = threading.Lock()
        self._waiting = False
        self._since = clock()
        self._generation = 0
        self._closed = False
        self.expired = ""
        self._timer = None
        self._arm(build_seconds)

    def waiting(self, waiting: bool) -> None:
        """The agent says the build waits for a slot (True) or runs (False)."""
        with self._lock:
            if self._closed or self.expired or waiting == self._waiting:
                return
            now = self._clock()
            if waiting:  # the build's own seconds stop here
                self._left -= now - self._since
            self._since, self._waiting = now, waiting
            self._arm(self._slot_wait if waiting else self._left)

    def close(self) -> None:
        """The call ended: nothing expires any more."""
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()

    def _arm(self, seconds: float) -> None:
        """(lock held, or in __init__) One timer at a time; a stale one that fires is ignored."""
        if self._timer is not None:
            self._timer.cancel()
        self._generation += 1
        self._timer = self._timer_factory(max(0.0, seconds), self._fire, args=(self._generation,))
        self._timer.daemon = True
        self._timer.start()

    def _fire(self, generation: int) -> None:
        with self._lock:
            if self._closed or self.expired or generation != self._generation:
                return
            self.expired = SLOT_WAIT if self._waiting else BUILD
        self._expire()
