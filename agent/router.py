"""The traffic switch seam: which container serves an app, and at what URL.

The release logic only speaks the `Router` protocol, so the direct-loopback router used now
can be replaced by a reverse proxy (HAProxy) without touching deploy code.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class RouterError(Exception):
    """Traffic could not be switched."""


@dataclass(frozen=True)
class Target:
    """A container that can take an app's traffic."""

    container_id: str
    host_port: int  # its port published on 127.0.0.1


class Router(Protocol):
    def switch(self, app: str, target: Target) -> str:
        """Send the app's traffic to `target`; returns the URL the app answers on."""

    def current(self, app: str) -> str | None:
        """Id of the container serving the app, or None."""

    def remove(self, app: str) -> None:
        """Forget the app's route."""


class DirectRouter:
    """No proxy: the app's URL is the serving container's own loopback port.

    The app -> container mapping is persisted in `routes.json` (written atomically) so that
    after a restart the agent still knows which container serves:
    `{"version": 1, "apps": {"<app>": {"container_id": "...", "url": "http://127.0.0.1:PORT"}}}`
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def _load(self) -> dict:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}  # a corrupt file must not stop the agent; reconcile rebuilds it
        apps = data.get("apps") if isinstance(data, dict) else None
        return apps if isinstance(apps, dict) else {}

    def _save(self, apps: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".routes-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump({"version": 1, "apps": apps}, fh, indent=2, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def switch(self, app: str, target: Target) -> str:
        url = f"http://127.0.0.1:{target.host_port}"
        with self._lock:
            apps = self._load()
            apps[app] = {"container_id": target.container_id, "url": url}
            try:
                self._save(apps)
            except OSError as exc:
                raise RouterError(f"cannot write {self.path}: {exc}") from exc
        return url

    def current(self, app: str) -> str | None:
        with self._lock:
            entry = self._load().get(app)
        return entry.get("container_id") if isinstance(entry, dict) else None

    def url(self, app: str) -> str | None:
        with self._lock:
            entry = self._load().get(app)
        return entry.get("url") if isinstance(entry, dict) else None

    def remove(self, app: str) -> None:
        with self._lock:
            apps = self._load()
            if apps.pop(app, None) is not None:
                self._save(apps)

    def apps(self) -> list[str]:
        with self._lock:
            return sorted(self._load())
