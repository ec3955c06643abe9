"""Where a running job's cancel callback is found: the worker registers it, a cancel request calls it."""

from __future__ import annotations

import threading
from collections.abc import Callable


class CancelRegistry:
    """Deployment id -> the cancel callback of the worker thread running it (in this process)."""

    def __init__(self) -> None:
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._lock = threading.Lock()

    def register(self, deployment_id: int, callback: Callable[[], None]) -> None:
        with self._lock:
            self._callbacks[deployment_id] = callback

    def unregister(self, deployment_id: int) -> None:
        with self._lock:
            self._callbacks.pop(deployment_id, None)

    def cancel(self, deployment_id: int) -> bool:
        """Calls the callback; False when no worker in this process runs the deployment."""
        with self._lock:
            callback = self._callbacks.get(deployment_id)
        if callback:
            callback()
        return callback is not None
