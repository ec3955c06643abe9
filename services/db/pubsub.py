"""Wake-ups between control-plane replicas: PostgreSQL LISTEN/NOTIFY behind a two-call interface.

A writer calls `publish(session, channel, payload)` inside the transaction that made the change:
PostgreSQL delivers a NOTIFY only when that transaction commits (and drops it on rollback), so a
replica is never woken for something it cannot read yet. Each replica keeps one connection
LISTENing, in a thread, and calls the channel's subscribers with the payload.

Replicas do not hear their own notifications: every payload carries this process's origin, and
the listener drops its own (the process already woke its local waiters directly, at once).

When the listening connection is lost, notifications sent meanwhile are lost with it: after it
reconnects, every subscriber is called with `None` ("anything may have changed; look"), so no
replica waits for a poll to notice work that arrived while it was deaf.

On SQLite there is one control-plane process (services.db.home_lock) and nothing to cross:
`publish` does nothing and no thread runs.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from enum import Enum

from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

Subscriber = Callable[[str | None], None]

# Where a session keeps what its transaction will publish at commit: (transaction, notifications).
_PENDING = "pubsub_pending"


@event.listens_for(Session, "before_commit")
def _send_pending(session: Session) -> None:
    """Sends the notifications the committing transaction published, in one statement; PostgreSQL
    delivers them when the commit succeeds (and drops them if it fails)."""
    pending = session.info.pop(_PENDING, None)
    if pending is None or pending[0] is not session.get_transaction() or not pending[1]:
        return
    params, calls = {}, []
    for i, (channel, payload) in enumerate(pending[1]):
        params[f"c{i}"], params[f"p{i}"] = channel, payload
        calls.append(f"pg_notify(:c{i}, :p{i})")
    session.execute(text("SELECT " + ", ".join(calls)), params)


class Channel(str, Enum):
    """What a notification is about; its payload is the id it concerns ('' when none)."""

    JOBS = "serversinc_jobs"          # a job became claimable (enqueued, or its app's job finished)
    EVENTS = "serversinc_events"      # a deployment's events were stored (payload: deployment id)
    CANCELS = "serversinc_cancels"    # a running deployment was asked to stop (payload: deployment id)


class Bus:
    # How long the listener waits for notifications before it checks whether it should stop.
    POLL_SECONDS = 0.5
    RECONNECT_SECONDS = (0.1, 0.5, 1.0, 2.0, 5.0)

    def __init__(self, engine: Engine):
        self.engine = engine
        self.enabled = engine.dialect.name == "postgresql"
        self.origin = uuid.uuid4().hex[:12]
        self._subscribers: dict[str, list[Subscriber]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None

    def subscribe(self, channel: Channel, subscriber: Subscriber) -> None:
        """`subscriber(payload)` runs in the listener thread: it must return quickly."""
        with self._lock:
            self._subscribers.setdefault(channel.value, []).append(subscriber)

    def publish(self, session: Session, channel: Channel, payload: str = "") -> None:
        """Sends `payload` on `channel` when the caller's transaction commits (PostgreSQL only).
        Everything one transaction publishes goes in one statement just before it commits, once
        per (channel, payload) however often it is published: a create (a job and its first
        event) costs one round trip, a batch of 256 build lines one notification."""
        if not self.enabled:
            return
        transaction = session.get_transaction()
        pending = session.info.get(_PENDING)
        if pending is None or pending[0] is not transaction:
            pending = session.info[_PENDING] = (transaction, {})
        pending[1].setdefault((channel.value, f"{self.origin}:{payload}"), None)

    def start(self) -> None:
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._listen_forever, name="pubsub-listener", daemon=True)
            self._thread.start()

    def wait_listening(self, timeout: float) -> bool:
        """True once the listener is connected (tests and start-up wait on this, never on a sleep)."""
        return not self.enabled or self._listening.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _listen_forever(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._listen(resync=failures > 0)
                failures = 0
            except Exception as err:  # the connection broke, or the server is restarting
                self._listening.clear()
                delay = self.RECONNECT_SECONDS[min(failures, len(self.RECONNECT_SECONDS) - 1)]
                failures += 1
                log.warning("listening for replica notifications failed (%s); again in %.1fs", err, delay)
                self._stop.wait(delay)

    def _listen(self, *, resync: bool) -> None:
        import psycopg  # only PostgreSQL deployments need the driver

        url = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(url, autocommit=True) as conn:
            for channel in Channel:
                conn.execute(f'LISTEN "{channel.value}"')
            self._listening.set()
            if resync:
                self._deliver_all(None)
            while not self._stop.is_set():
                for note in conn.notifies(timeout=self.POLL_SECONDS):
                    origin, _, payload = note.payload.partition(":")
                    if origin != self.origin:
                        self._deliver(note.channel, payload)
                    if self._stop.is_set():
                        break

    def _deliver(self, channel: str, payload: str | None) -> None:
        with self._lock:
            subscribers = list(self._subscribers.get(channel, ()))
        for subscriber in subscribers:
            try:
                subscriber(payload)
            except Exception:
                log.exception("a subscriber of %s failed", channel)

    def _deliver_all(self, payload: str | None) -> None:
        with self._lock:
            channels = list(self._subscribers)
        for channel in channels:
            self._deliver(channel, payload)
