"""The traffic switch seam: which container serves an app, and at what URL.

The release logic only speaks the `Router` protocol. Two implementations:
- `DirectRouter` (here): no proxy, the app's URL is the serving container's own loopback port;
- `HAProxyRouter` (agent.haproxy): a front door whose upstream changes through HAProxy's
  runtime API, without a reload, so a switch drops no request.

Both persist their routes in the same `routes.json` (see `RouteStore`).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence


class RouterError(Exception):
    """Traffic could not be switched."""


@dataclass(frozen=True)
class Target:
    """A container that can take an app's traffic."""

    container_id: str
    host_port: int  # its port published on 127.0.0.1


class Router(Protocol):
    def start(self) -> None:
        """Bring the routing up (start/attach the proxy, restore persisted routes)."""

    def close(self) -> None:
        """Stop what `start` started."""

    def ensure_app(self, app: str, domains: Sequence[str] = ()) -> None:
        """Make the app routable (before its first switch); may reload the proxy, so it is
        never called in the middle of a switch."""

    def switch(self, app: str, target: Target) -> str:
        """Send the app's new requests to `target`; returns the URL the app answers on.

        The previous target only finishes what it has in flight; call `drain` next."""

    def drain(self, app: str, seconds: float) -> str:
        """Wait (at most `seconds`) for the previous target's in-flight requests, then take it
        out of the route for good; returns a message for people."""

    def current(self, app: str) -> str | None:
        """Id of the container serving the app, or None."""

    def url(self, app: str) -> str | None:
        """The URL the app answers on, or None."""

    def apps(self) -> list[str]:
        """Apps with a persisted route."""

    def remove(self, app: str) -> None:
        """Forget the app's route."""


class RouteStore:
    """`routes.json`, written atomically: `{"version": 1, "apps": {"<app>": {...}}}`.

    Every entry has `container_id` and `url`; the HAProxy router adds `slot`, `host_port` and
    `domains`. Thread-safe through the caller's lock.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> dict:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}  # a corrupt file must not stop the agent; reconcile rebuilds it
        apps = data.get("apps") if isinstance(data, dict) else None
        if not isinstance(apps, dict):
            return {}
        return {k: v for k, v in apps.items() if isinstance(v, dict)}

    def save(self, apps: dict) -> None:
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


class DirectRouter:
    """No proxy: the app's URL is the serving container's own loopback port.

    The app -> container mapping is persisted in `routes.json` (written atomically) so that
    after a restart the agent still knows which container serves:
    `{"version": 1, "apps": {"<app>": {"container_id": "...", "url": "http://127.0.0.1:PORT"}}}`
    Switching is not zero-downtime (clients must follow the URL); use HAProxyRouter for that.
    """

    def __init__(self, path: Path) -> None:
        self.store = RouteStore(path)
        self.path = self.store.path
        self._lock = threading.Lock()

    def start(self) -> None:
        pass

    def close(self) -> None:
        pass

    def ensure_app(self, app: str, domains: Sequence[str] = ()) -> None:
        pass

    def switch(self, app: str, target: Target) -> str:
        url = f"http://127.0.0.1:{target.host_port}"
        with self._lock:
            apps = self.store.load()
            apps[app] = {"container_id": target.container_id, "url": url}
            try:
                self.store.save(apps)
            except OSError as exc:
                raise RouterError(f"cannot write {self.path}: {exc}") from exc
        return url

    def drain(self, app: str, seconds: float) -> str:
        return "no proxy: nothing to drain"

    def current(self, app: str) -> str | None:
        with self._lock:
            entry = self.store.load().get(app)
        return entry.get("container_id") if entry else None

    def url(self, app: str) -> str | None:
        with self._lock:
            entry = self.store.load().get(app)
        return entry.get("url") if entry else None

    def remove(self, app: str) -> None:
        with self._lock:
            apps = self.store.load()
            if apps.pop(app, None) is not None:
                self.store.save(apps)

    def apps(self) -> list[str]:
        with self._lock:
            return sorted(self.store.load())
