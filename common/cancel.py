"""CancelToken: the one cancellation signal of a Build or Deploy, on both sides of the wire.

The control plane's worker cancels a deployment's token (a user's Cancel, or its own shutdown);
the agent cancels an operation's token when the control plane's call is cancelled. Callbacks let
blocking work be interrupted at once (a gRPC call cancelled, a Docker stream closed).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class CancelToken:
    """Set once when an operation must stop.

    `protect()` marks the point of no return (a deploy after its traffic switch): later cancels
    are ignored rather than leaving the app half switched. `shutdown` is True when the cancel
    comes from a shutting-down worker, which leaves the deployment to resume at the next start.
    """

    def __init__(self) -> None:
        self.shutdown = False
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
        """Cancel and run the callbacks; False when protected (the cancel is ignored)."""
        with self._lock:
            if self._protected or self._event.is_set():
                return not self._protected
            self._event.set()
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback()
            except Exception:  # a failing interrupt must not keep the others from running
                log.exception("a cancel callback failed")
        return True

    def protect(self) -> bool:
        """Ignore cancels from now on; False if already cancelled (the caller must stop)."""
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
