"""The deployment event log: every event is stored first, then watchers are woken.

Watchers never receive events from memory: they wake up and read what is stored after their last
seq, so a late or reconnecting watcher sees exactly what a live one saw, and nothing is lost if
it is slow.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from services.core.states import EventKind, Phase, State
from services.db.models import DeploymentEvent, utcnow
from services.db.pubsub import Bus, Channel
from services.db.session import Database
from services.deployments import repository as repo


class Notifier:
    """Wakes the watchers of a deployment after its events are stored: subscribed callbacks, run
    in the notifying thread (the feed of services.deployments.feed hands them to its event loop)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: dict[int, list] = {}

    def subscribe(self, deployment_id: int, callback) -> None:
        """Calls `callback()` after each notify of the deployment, in the notifying thread: it
        must not block (e.g. `loop.call_soon_threadsafe`)."""
        with self._lock:
            self._callbacks.setdefault(deployment_id, []).append(callback)

    def unsubscribe(self, deployment_id: int, callback) -> None:
        with self._lock:
            callbacks = self._callbacks.get(deployment_id, [])
            if callback in callbacks:
                callbacks.remove(callback)
            if not callbacks:
                self._callbacks.pop(deployment_id, None)

    def notify(self, deployment_id: int) -> None:
        with self._lock:
            callbacks = list(self._callbacks.get(deployment_id, ()))
        for callback in callbacks:
            callback()

    def notify_all(self) -> None:
        """Wakes every watcher: notifications from other replicas may have been missed."""
        with self._lock:
            ids = list(self._callbacks)
        for deployment_id in ids:
            self.notify(deployment_id)

    def heard(self, payload: str | None) -> None:
        """A bus notification from another replica (services.db.pubsub): events were stored."""
        if payload is None:
            self.notify_all()
        elif payload.isdigit():
            self.notify(int(payload))


@dataclass(frozen=True)
class Event:
    """A stored event, detached from the database."""

    deployment_id: int
    seq: int
    time: object
    kind: EventKind
    phase: Phase
    message: str = ""
    step_current: int = 0
    step_total: int = 0
    state: State | None = None

    @classmethod
    def from_row(cls, row: DeploymentEvent) -> "Event":
        return cls(
            deployment_id=row.deployment_id,
            seq=row.seq,
            time=row.created_at,
            kind=EventKind(row.kind),
            phase=Phase(row.phase),
            message=row.message,
            step_current=row.step_current,
            step_total=row.step_total,
            state=State(row.state) if row.state else None,
        )


class EventLog:
    # How long a watcher sleeps without a wake-up before it looks at the database anyway. Writers
    # in other replicas wake it through the bus (services.db.pubsub), which after a lost connection
    # wakes every watcher; this is the last resort only.
    POLL_SECONDS = 5.0

    def __init__(self, db: Database, notifier: Notifier | None = None, bus: Bus | None = None):
        self.db = db
        self.notifier = notifier or Notifier()
        self._bus = bus
        if bus is not None:
            bus.subscribe(Channel.EVENTS, self.notifier.heard)

    def append(self, session, deployment_id: int, kind: EventKind, phase: Phase, message: str = "", *,
               step_current: int = 0, step_total: int = 0, state: State | None = None, seq: int = 0,
               locked: bool = False) -> None:
        """Adds an event inside the caller's transaction; the caller calls `notify` after commit.
        `seq` is given only by the creator of a deployment (its first event is 1); `locked`: the
        caller's transaction already updated the deployment's row (PostgreSQL: holds its lock)."""
        row = dict(deployment_id=deployment_id, created_at=utcnow(), kind=str(kind), phase=str(phase),
                   message=message, step_current=step_current, step_total=step_total,
                   state=str(state) if state else "")
        if seq:
            repo.insert_event(session, {**row, "seq": seq})
        else:
            repo.append_event(session, row, locked=locked)
        if self._bus is not None:
            # Sent with the commit; PostgreSQL folds identical payloads of one transaction into one.
            self._bus.publish(session, Channel.EVENTS, str(deployment_id))

    def append_many(self, session, events: list[tuple[int, EventKind, Phase, str, State | None]], *,
                    first: bool = False) -> None:
        """Several (deployment id, kind, phase, message, state) events in one statement, inside the
        caller's transaction: each its deployment's first (`first`: seq 1), or else after its newest
        one, the caller's transaction already holding those deployments' rows (it updated them)."""
        if not events:
            return
        now = utcnow()
        rows = [dict(deployment_id=d, created_at=now, kind=str(kind), phase=str(phase), message=message,
                     step_current=0, step_total=0, state=str(state) if state else "")
                for d, kind, phase, message, state in events]
        if first:
            repo.insert_event(session, [{**row, "seq": 1} for row in rows])
        else:
            repo.append_events_locked(session, rows)
        if self._bus is not None:
            for d, *_ in events:
                self._bus.publish(session, Channel.EVENTS, str(d))

    def emit(self, deployment_id: int, kind: EventKind, phase: Phase, message: str = "", **kw) -> None:
        """Stores one event in its own transaction, then wakes the watchers."""
        with self.db.session() as s:
            self.append(s, deployment_id, kind, phase, message, **kw)
        self.notifier.notify(deployment_id)

    def emit_many(self, deployment_id: int, items: list[tuple]) -> None:
        """Stores several events in one transaction (a burst of build lines), then wakes watchers once."""
        if not items:
            return
        with self.db.session() as s:
            for kind, phase, message, kw in items:
                self.append(s, deployment_id, kind, phase, message, **kw)
        self.notifier.notify(deployment_id)

    def stored(self, deployment_id: int, after_seq: int = 0) -> list[Event]:
        """Every event stored so far after `after_seq`, in seq order, read page by page (watchers
        follow them live through services.deployments.feed)."""
        events: list[Event] = []
        while True:
            with self.db.read() as s:
                page = [Event.from_row(r) for r in repo.events_after(s, deployment_id, after_seq)]
            if not page:
                return events
            events += page
            after_seq = page[-1].seq


def is_terminal(session, deployment_id: int) -> bool:
    """True when the deployment ended (or is gone): a follower has nothing more to wait for."""
    dep = repo.get(session, deployment_id)
    return dep is None or State(dep.state).terminal
