"""Running operations by deployment id, so Cancel can stop exactly one Build or Deploy."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator


class AlreadyRunning(Exception):
    """Another operation with the same deployment id is running."""


class CancelToken:
    """Set once when an operation must stop; callbacks let blocking work be interrupted.

    `protect()` marks the point of no return (a deploy after its traffic switch): later
    cancels are ignored rather than leaving the app half switched.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._callbacks: list[Callable[[], None]] = []
        self._protected = False

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True if cancelled meanwhile."""
        return self._event.wait(seconds)

    def cancel(self) -> bool:
        with self._lock:
            if self._protected or self._event.is_set():
                return not self._protected
            self._event.set()
            callbacks = list(self._callbacks)
        for cb in callbacks:
            try:
                cb()
            except Exception:  # a failing interrupt must not stop the others
                pass
        return True

    def protect(self) -> bool:
        """Ignore cancels from now on; False if already cancelled (caller must stop)."""
        with self._lock:
            if self._event.is_set():
                return False
            self._protected = True
            return True

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run `callback` on cancel (at once if already cancelled); returns an unregister."""
        with self._lock:
            already = self._event.is_set()
            if not already:
                self._callbacks.append(callback)
        if already:
            callback()

        def unregister() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)
        return unregister


class Operations:
    """Registry of running operations keyed by deployment id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[int, CancelToken] = {}

    @contextmanager
    def run(self, deployment_id: int) -> Iterator[CancelToken]:
        token = CancelToken()
        with self._lock:
            if deployment_id in self._running:
                raise AlreadyRunning(
                    f"deployment {deployment_id} already has a Build or Deploy running")
            self._running[deployment_id] = token
        try:
            yield token
        finally:
            with self._lock:
                if self._running.get(deployment_id) is token:
                    del self._running[deployment_id]

    def cancel(self, deployment_id: int) -> bool:
        """Cancel the operation; False when none runs for that id."""
        with self._lock:
            token = self._running.get(deployment_id)
        if token is None:
            return False
        token.cancel()
        return True
