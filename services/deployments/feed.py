"""Deployment watches for asyncio: many watchers of a deployment share one reader of its events.

The event log's invariant still holds (stored first, then woken): a watcher receives only events
read from the database, in seq order, each once. Watchers of one deployment share a reader task:
a wake-up (the EventLog notifier, or the poll that covers writers in another process) costs one
query per watched deployment, not one per watcher, and no watcher holds a thread while it waits.
The reader keeps a window of the latest events; a watcher behind it (a replay from an old
`after_seq`) reads the database itself until it has caught up with the window.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import AsyncIterator
from concurrent import futures

from services.core.errors import InvalidArgument
from services.core.states import EventKind
from services.deployments import repository as repo
from services.deployments.events import Event, EventLog, is_terminal


PAGE = 1000  # events per read


def _ends(event: Event) -> bool:
    return event.kind == EventKind.STATE and event.state is not None and event.state.terminal


class _Feed:
    """What the reader of one deployment has read: every stored event with base < seq <= last."""

    WINDOW = 2000

    def __init__(self, base: int) -> None:
        self.base = base
        self.last = base
        self.events: list[Event] = []
        self.finished = False
        self.watchers = 0
        self.wake = asyncio.Event()
        self.changed = asyncio.Event()
        self.task: asyncio.Task | None = None

    def after(self, seq: int) -> list[Event] | None:
        """The window's events after `seq`; None when `seq` is before the window."""
        if seq < self.base:
            return None
        return self.events[bisect.bisect_right(self.events, seq, key=lambda e: e.seq):]

    def add(self, rows: list[Event], finished: bool) -> None:
        self.events.extend(rows)
        if rows:
            self.last = rows[-1].seq
        if len(self.events) > self.WINDOW:
            drop = len(self.events) - self.WINDOW
            self.base = self.events[drop - 1].seq
            del self.events[:drop]
        self.finished = finished
        if rows or finished:
            changed, self.changed = self.changed, asyncio.Event()
            changed.set()


class Feeds:
    """The asyncio side of an EventLog: `follow` is a deployment watch that holds no thread.

    Database reads run in a small pool of their own (`readers` threads), so a burst of events
    on many deployments never takes the threads that serve unary calls.
    """

    def __init__(self, log: EventLog, *, readers: int = 4) -> None:
        self.log = log
        self._pool = futures.ThreadPoolExecutor(max_workers=readers, thread_name_prefix="feed")
        self._feeds: dict[int, _Feed] = {}

    def close(self) -> None:
        for feed in list(self._feeds.values()):
            if feed.task is not None:
                feed.task.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def follow(self, deployment_id: int, after_seq: int) -> AsyncIterator[Event]:
        """Stored events after `after_seq`, then new ones as they are stored, until the
        deployment's terminal STATE event; the caller going away cancels it."""
        if after_seq < 0:
            raise InvalidArgument("after_seq must not be negative", field="after_seq")
        feed = self._join(deployment_id, after_seq)
        try:
            last = after_seq
            while True:
                changed = feed.changed
                batch = feed.after(last)
                if batch is None:
                    batch, _ = await self._read(deployment_id, last)
                for event in batch:
                    yield event
                    last = event.seq
                    if _ends(event):
                        return
                if not batch:
                    if feed.finished and last >= feed.last:
                        return
                    await changed.wait()
        finally:
            self._leave(deployment_id, feed)

    def _join(self, deployment_id: int, after_seq: int) -> _Feed:
        feed = self._feeds.get(deployment_id)
        if feed is None:
            feed = self._feeds[deployment_id] = _Feed(after_seq)
            loop = asyncio.get_running_loop()

            def wake() -> None:  # from the notifying thread
                if not loop.is_closed():
                    loop.call_soon_threadsafe(feed.wake.set)

            self.log.notifier.subscribe(deployment_id, wake)
            feed.task = loop.create_task(self._reader(deployment_id, feed, wake))
        feed.watchers += 1
        return feed

    def _leave(self, deployment_id: int, feed: _Feed) -> None:
        feed.watchers -= 1
        if feed.watchers == 0 and self._feeds.get(deployment_id) is feed:
            del self._feeds[deployment_id]
            feed.task.cancel()

    async def _reader(self, deployment_id: int, feed: _Feed, wake) -> None:
        try:
            while not feed.finished:
                feed.wake.clear()  # before the read: a wake-up during it reads again
                rows, finished = await self._read(deployment_id, feed.last)
                feed.add(rows, finished)
                if len(rows) >= PAGE:
                    continue
                try:
                    await asyncio.wait_for(feed.wake.wait(), self.log.POLL_SECONDS)
                except TimeoutError:
                    pass
        finally:
            self.log.notifier.unsubscribe(deployment_id, wake)

    async def _read(self, deployment_id: int, after: int) -> tuple[list[Event], bool]:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._read_now,
                                                                deployment_id, after)

    def _read_now(self, deployment_id: int, after: int) -> tuple[list[Event], bool]:
        """(events after `after`, whether the deployment has ended with them).

        With no new event, the deployment's state says whether more can come. On PostgreSQL each
        statement of a read sees the commits made before it (READ COMMITTED), so the commit that
        stores the terminal event and state can land between the two reads: the state is then
        terminal while its event was not read. The events are read again after such a state, or a
        watch would end without its terminal event (seen with two replicas under load)."""
        with self.log.db.read() as s:
            rows = self._events(s, deployment_id, after)
            if rows:
                return rows, any(_ends(e) for e in rows)
            if not is_terminal(s, deployment_id):
                return [], False
            rows = self._events(s, deployment_id, after)
        return rows, not rows or any(_ends(e) for e in rows)

    @staticmethod
    def _events(session, deployment_id: int, after: int) -> list[Event]:
        return [Event.from_row(r) for r in repo.events_after(session, deployment_id, after, PAGE)]
