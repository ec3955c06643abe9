"""Where a running job's cancel callback is found: the worker registers it, a cancel request calls it.

A cancel may reach any replica, while the deployment runs on one: the request is stored
(`cancel_requested`) and published on the replicas' bus in the same transaction; every replica's
registry hears it and the one whose worker runs the deployment calls its callback.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy.orm import Session

from services.db.pubsub import Bus, Channel


class CancelRegistry:
    """Deployment id -> the cancel callback of the worker thread running it (in this process)."""

    def __init__(self, bus: Bus | None = None) -> None:
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._lock = threading.Lock()
        self._bus = bus
        self._on_resync: Callable[[], None] = lambda: None
        if bus is not None:
            bus.subscribe(Channel.CANCELS, self._heard)

    def register(self, deployment_id: int, callback: Callable[[], None]) -> None:
        with self._lock:
            self._callbacks[deployment_id] = callback

    def unregister(self, deployment_id: int) -> None:
        with self._lock:
            self._callbacks.pop(deployment_id, None)

    def running(self) -> list[int]:
        """The deployments whose worker runs in this process."""
        with self._lock:
            return list(self._callbacks)

    def cancel(self, deployment_id: int) -> bool:
        """Calls the callback; False when no worker in this process runs the deployment."""
        with self._lock:
            callback = self._callbacks.get(deployment_id)
        if callback:
            callback()
        return callback is not None

    def publish(self, session: Session, deployment_id: int) -> None:
        """Tells every replica, when the caller's transaction commits, that the deployment is to stop."""
        if self._bus is not None:
            self._bus.publish(session, Channel.CANCELS, str(deployment_id))

    def on_resync(self, callback: Callable[[], None]) -> None:
        """`callback()` looks up stored cancel requests itself: run when the bus may have missed some."""
        self._on_resync = callback

    def resync(self) -> None:
        """Looks up stored cancel requests of what runs here (after a lost bus connection, and
        now and then as a last resort)."""
        if self.running():
            self._on_resync()

    def _heard(self, payload: str | None) -> None:
        if payload is None:
            self.resync()
        elif payload.isdigit():
            self.cancel(int(payload))
