"""Group commit: concurrent callers' writes done in one transaction, by a writer thread of its own.

Why: under concurrent calls a write's cost is mostly per statement and per transaction (the ORM,
the driver, a round trip, the commit), paid while holding the GIL, which every API thread shares.
Twenty webhook deliveries at once made twenty transactions of seven statements each, queued on one
core. Done together they cost one transaction of about as many statements as one of them.

How: a caller puts its item in the queue and waits (a thread on an event, a coroutine on a future:
it holds no thread). One writer thread takes the queued items (at most `max_batch`, never two of one
key: see below), hands them to `run` together, gives each caller its outcome, and looks again; it
ends when nothing is queued, and the next caller starts another. No caller waits for a window: a
batch is what queued while the previous one was being written, so a caller alone is written at once.
(Two writers at once were measured on PostgreSQL: smaller batches, more CPU per item, slower.)

Items of one key (deployments: one app) are never in one batch: the later one waits for the next,
so it sees the earlier one committed, exactly as if the two had been written one after the other
in arrival order.

`run(items)` returns one outcome per item, in order: a result, or the exception that caller gets.
If `run` itself raises, every caller of the batch gets that exception. It runs in the writer's
thread: a caller must not hold what `run` needs (SQLite: never submit from inside a write
transaction, whose lock the writer would wait for).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class _Slot:
    __slots__ = ("item", "key", "outcome", "done", "future")

    def __init__(self, item, key, future: asyncio.Future | None = None) -> None:
        self.item = item
        self.key = key
        self.outcome = None
        # A thread's caller waits on `done`; a coroutine's awaits `future`, resolved on its loop.
        self.done = threading.Event() if future is None else None
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
    def __init__(self, run: Callable[[list[T]], list], *, key: Callable[[T], Hashable], max_batch: int = 64,
                 name: str = "group-commit"):
        self._run = run
        self._key = key
        self.max_batch = max_batch
        self._name = name
        self._lock = threading.Lock()
        self._pending: list[_Slot] = []
        self._writing = False  # a writer thread runs

    def submit(self, item: T) -> R:
        """`item`'s outcome once its batch committed (or raised): returns the result or raises."""
        slot = _Slot(item, self._key(item))
        self._queue(slot)
        slot.done.wait()
        if isinstance(slot.outcome, BaseException):
            raise slot.outcome
        return slot.outcome

    async def submit_async(self, item: T) -> R:
        """`submit` for a coroutine on an event loop: it holds no thread while it waits."""
        slot = _Slot(item, self._key(item), asyncio.get_running_loop().create_future())
        self._queue(slot)
        return await slot.future

    def _queue(self, slot: _Slot) -> None:
        with self._lock:
            self._pending.append(slot)
            if self._writing:
                return  # the writer takes it when it looks again
            self._writing = True
        try:
            threading.Thread(target=self._write, name=self._name, daemon=True).start()
        except BaseException as err:  # no thread (the process is at its limit): whoever waits fails
            with self._lock:
                stranded, self._pending = self._pending, []
                self._writing = False
            self._deliver(stranded, [err] * len(stranded))

    def _take(self) -> list[_Slot]:
        """The oldest queued items of distinct keys; the rest keep their places (lock held)."""
        batch, keys, rest = [], set(), []
        for slot in self._pending:
            if len(batch) < self.max_batch and slot.key not in keys:
                batch.append(slot)
                keys.add(slot.key)
            else:
                rest.append(slot)
        self._pending = rest
        return batch

    def _write(self) -> None:
        """The writer: batches until nothing is queued."""
        while True:
            with self._lock:
                batch = self._take()
                if not batch:
                    self._writing = False
                    return
            try:
                outcomes = self._run([slot.item for slot in batch])
                if len(outcomes) != len(batch):
                    raise RuntimeError(f"group commit: {len(outcomes)} outcomes for {len(batch)} items")
            except BaseException as err:  # every caller of the batch learns it
                outcomes = [err] * len(batch)
            self._deliver(batch, outcomes)

    @staticmethod
    def _deliver(batch: list[_Slot], outcomes: list) -> None:
        loops: dict[asyncio.AbstractEventLoop, list[_Slot]] = {}
        for slot, outcome in zip(batch, outcomes):
            slot.outcome = outcome
            if slot.future is not None:
                loops.setdefault(slot.future.get_loop(), []).append(slot)
            else:
                slot.done.set()
        for loop, slots in loops.items():  # one wake-up of each loop per batch
            try:
                loop.call_soon_threadsafe(_resolve, slots)
            except RuntimeError:  # that loop is closed: nobody awaits them any more
                pass
