"""How many image builds run at once on this server: TUGBOAT_BUILD_CONCURRENCY, default 1.

A build is the heaviest thing an agent does (every RUN step takes CPU, memory and disk I/O from
the apps serving on the same server), so builds past the limit wait their turn, in the order
they asked, and say so in their stream. Only the `docker build` itself takes a slot: a build
that reuses an existing image, the fetch and the context archive do not.

The wait is on the agent's event loop, not in a thread: a queue of waiting builds holds none of
the pool threads that every other call (deploys, logs, health) needs. A build cancelled while it
waits (Cancel, or its caller gone) leaves the queue at once and holds nothing.
"""

from __future__ import annotations

import asyncio
import os

from common.cancel import CancelToken

ENV = "TUGBOAT_BUILD_CONCURRENCY"
DEFAULT = 1
# The line a waiting build's stream carries, so the user sees why nothing happens yet.
WAITING = (f"waiting for another build on this server to finish (at most {{limit}} at a time: "
           f"{ENV} on the agent)")


def limit_from_env() -> int:
    """TUGBOAT_BUILD_CONCURRENCY as a whole number >= 1 (unset: 1); ValueError says what to set."""
    text = os.environ.get(ENV, "").strip()
    if not text:
        return DEFAULT
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{ENV}={text!r} is not a whole number of builds") from None
    return check_limit(value)


def check_limit(value: int) -> int:
    if value < 1:
        raise ValueError(f"{ENV} must be at least 1 (builds at once on this server), not {value}")
    return value


class BuildSlots:
    def __init__(self, limit: int = DEFAULT) -> None:
        self.limit = check_limit(limit)
        self._sem = asyncio.Semaphore(self.limit)

    @property
    def waiting_line(self) -> str:
        return WAITING.format(limit=self.limit)

    def free(self) -> bool:
        """True when a slot is free now and nobody waits ahead (acquire will not wait)."""
        return not self._sem.locked()

    async def acquire(self, token: CancelToken) -> bool:
        """Waits for a slot; False (nothing held) when `token` is cancelled first. A cancel of
        the calling task itself (the caller went away) propagates as usual."""
        loop = asyncio.get_running_loop()
        wait = asyncio.ensure_future(self._sem.acquire())
        unregister = token.on_cancel(lambda: loop.call_soon_threadsafe(wait.cancel))
        try:
            await wait
            return True
        except asyncio.CancelledError:
            if wait.done() and not wait.cancelled():  # got the slot as the cancel came: give it back
                self._sem.release()
            current = asyncio.current_task()
            if token.cancelled and not (current and current.cancelling()):
                return False
            raise
        finally:
            unregister()

    def release(self) -> None:
        self._sem.release()
