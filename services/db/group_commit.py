"""Group commit: concurrent callers' writes done in one transaction, by whichever caller leads.

Why: under concurrent calls a write's cost is mostly per statement and per transaction (the ORM,
the driver, a round trip, the commit), paid while holding the GIL, which every API thread shares.
Twenty webhook deliveries at once made twenty transactions of seven statements each, queued on one
core. Done together they cost one transaction of about as many statements as one of them.

How: a caller puts its item in the queue. When no batch is being written it leads: it takes the
queued items (at most `max_batch`, never two of one key: see below), hands them to `run` together,
gives each caller its outcome, and, when items are left, hands the lead to the oldest waiting one
and returns. No caller waits for a window: a batch is what queued while the previous one was being
written, so a caller alone is written at once.

Items of one key (deployments: one app) are never in one batch: the later one waits for the next,
so it sees what the earlier one committed, exactly as if the two had been written one after the
other in arrival order.

`run(items)` returns one outcome per item, in order: a result, or the exception that caller gets.
If `run` itself raises, every caller of the batch gets that exception.

The leader runs `run` in its own thread: a caller must not hold anything the batch needs (for SQLite,
the process's write lock: never submit from inside a write transaction).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class _Slot:
    __slots__ = ("item", "key", "outcome", "done", "wake", "future")

    def __init__(self, item, key, future: asyncio.Future | None = None) -> None:
        self.item = item
        self.key = key
        self.outcome = None
        self.done = False
        # A thread's caller waits on `wake` (set when done, or when it is to lead); a coroutine's
        # awaits `future`, resolved on its loop.
        self.wake = threading.Event() if future is None else None
        self.future = future


def _resolve(slots: list[_Slot]) -> None:
    """On the coroutines' loop: their outcomes (a caller that went away is not waiting)."""
    for slot in slots:
        if not slot.future.done():
            if isinstance(slot.outcome, BaseException):
                slot.future.set_exception(slot.outcome)
            else:
                slot.future.set_result(slot.outcome)


class GroupCommit(Generic[T, R]):
    def __init__(self, run: Callable[[list[T]], list], *, key: Callable[[T], Hashable], max_batch: int = 64):
        self._run = run
        self._key = key
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._pending: list[_Slot] = []
        self._leading = False

    def submit(self, item: T) -> R:
        """`item`'s outcome once its batch committed (or raised): returns the result or raises."""
        slot = _Slot(item, self._key(item))
        with self._lock:
            self._pending.append(slot)
            lead = not self._leading
            self._leading = True
        if not lead:
            slot.wake.wait()
        if not slot.done:
            self._lead(slot)
        if isinstance(slot.outcome, BaseException):
            raise slot.outcome
        return slot.outcome

    async def submit_async(self, item: T) -> R:
        """`submit` for a coroutine on an event loop: it holds no thread while it waits. With no
        batch being written, a thread of the loop's default executor leads (never the loop)."""
        loop = asyncio.get_running_loop()
        slot = _Slot(item, self._key(item), loop.create_future())
        with self._lock:
            self._pending.append(slot)
            lead = not self._leading
            self._leading = True
        if lead:
            loop.run_in_executor(None, self._lead, None)
        return await slot.future

    def _take(self) -> list[_Slot]:
        """The oldest queued items of distinct keys; the rest keep their places."""
        batch, keys, rest = [], set(), []
        for slot in self._pending:
            if len(batch) < self.max_batch and slot.key not in keys:
                batch.append(slot)
                keys.add(slot.key)
            else:
                rest.append(slot)
        self._pending = rest
        return batch

    def _lead(self, mine: _Slot | None) -> None:
        """Writes batches until `mine` is written, then passes the lead on (or lays it down). An
        executor's thread (`mine` None) writes until nothing is queued."""
        try:
            while mine is None or not mine.done:
                with self._lock:
                    batch = self._take()
                if not batch:
                    return  # (an executor's thread only: a caller's own slot is queued until done)
                try:
                    outcomes = self._run([slot.item for slot in batch])
                    if len(outcomes) != len(batch):
                        raise RuntimeError(f"group commit: {len(outcomes)} outcomes for {len(batch)} items")
                except BaseException as err:  # every caller of the batch learns it
                    outcomes = [err] * len(batch)
                loops: dict[asyncio.AbstractEventLoop, list[_Slot]] = {}
                for slot, outcome in zip(batch, outcomes):
                    slot.outcome = outcome
                    slot.done = True
                    if slot.future is not None:
                        loops.setdefault(slot.future.get_loop(), []).append(slot)
                    elif slot is not mine:
                        slot.wake.set()
                for loop, slots in loops.items():  # one wake-up of each loop per batch
                    try:
                        loop.call_soon_threadsafe(_resolve, slots)
                    except RuntimeError:  # that loop is closed: nobody awaits them any more
                        pass
        finally:
            with self._lock:
                handed = False
                while self._pending and not handed:
                    first = self._pending[0]
                    if first.wake is not None:
                        first.wake.set()  # it leads: it is not done
                        handed = True
                    else:
                        try:
                            loop = first.future.get_loop()
                            loop.call_soon_threadsafe(loop.run_in_executor, None, self._lead, None)
                            handed = True
                        except RuntimeError:  # its loop is closed: drop it, nobody awaits it
                            self._pending.pop(0)
                if not handed:
                    self._leading = False
