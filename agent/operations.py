"""Running operations by deployment id, so Cancel can stop exactly one Build or Deploy."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

# Shared with the control plane; the builder and releaser import it from here.
from common.cancel import CancelToken


class AlreadyRunning(Exception):
    """Another operation with the same deployment id is running."""


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
