"""The traffic switch seam: which containers serve an app, and at what URL.

The release logic only speaks the `Router` protocol. Two implementations:
- `DirectRouter` (here): no proxy, the app's URL is its first serving container's own loopback
  port;
- `HAProxyRouter` (agent.haproxy): a front door whose upstream changes through HAProxy's
  runtime API, without a reload, so a switch drops no request.

Both persist typed routes (`agent.route_policy.Route`) in the same `routes.json` (`RouteStore`).
"""

from __future__ import annotations

import enum
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence

from agent.route_policy import Check, Route, Server, Target
from common.files import write_atomic

__all__ = ["Check", "DirectRouter", "Health", "RouteStore", "Router", "RouterError",
           "ServerHealth", "Target", "UnknownRoute"]

ROUTES_VERSION = 2


class RouterError(Exception):
    """Traffic could not be switched."""


class UnknownRoute(RouterError):
    """The router has no route for the app."""


class Health(enum.Enum):
    """A serving container's health as the router's checks see it."""

    UNKNOWN = "unknown"  # not checked (no proxy, not routed, or the proxy cannot be asked)
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True)
class ServerHealth:
    health: Health
    detail: str = ""  # a short reason, e.g. the proxy's last check result


class Router(Protocol):
    def start(self) -> None:
        """Bring the routing up (start/attach the proxy, restore persisted routes)."""

    def close(self) -> None:
        """Stop what `start` started."""

    def ensure_app(self, app: str, domains: Sequence[str] = (), check: Check | None = None) -> None:
        """Make the app routable with these domains (before its first switch); may reload the
        proxy, so it is never called in the middle of a switch. `check` is the health check of
        a new app's route; an existing route keeps its own until `switch`."""

    def switch(self, app: str, targets: Sequence[Target], check: Check | None = None) -> str:
        """Send the app's new requests to `targets`, checked from now on with `check` (None:
        the route's current one); returns the URL the app answers on.

        What served before only finishes what it has in flight; call `drain` next."""

    def drain(self, app: str, seconds: float, progress: Callable[[int], None] | None = None) -> str:
        """Wait (at most `seconds`) until what the last switch took out of rotation holds no
        open connection (in-flight requests, WebSockets, event streams), then take it out of
        the route for good; `progress(open)` hears the count as it changes. Returns a message
        for people."""

    def set_maintenance(self, app: str, on: bool, message: str = "") -> None:
        """Answer the app's requests with its maintenance page (503, `message`) while on,
        without touching its containers; persisted, and applied without a reload."""

    def maintenance(self, app: str) -> tuple[bool, str]:
        """(on, message) of the app's maintenance mode."""

    def draining(self, app: str) -> dict[int, int]:
        """Open connections of the app's draining (retiring) containers, by their host port."""

    def serving(self, app: str) -> tuple[str, ...]:
        """Ids of the containers in the app's rotation (empty when none)."""

    def url(self, app: str) -> str | None:
        """The URL the app answers on, or None."""

    def apps(self) -> list[str]:
        """Apps with a persisted route."""

    def health(self, app: str) -> dict[str, ServerHealth]:
        """Health of each container in the app's rotation, by container id."""

    def remove(self, app: str) -> None:
        """Forget the app's route."""


class RouteStore:
    """`routes.json`, written atomically: `{"version": 2, "apps": {"<app>": Route}}`.

    Version 1 files (one container per app) are read too. Thread-safe through the caller's
    lock.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, Route]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}  # a corrupt file must not stop the agent; reconcile rebuilds it
        apps = data.get("apps") if isinstance(data, dict) else None
        if not isinstance(apps, dict):
            return {}
        routes = {}
        for app, entry in apps.items():
            try:
                routes[app] = Route.from_json(entry)
            except (AttributeError, TypeError, ValueError, KeyError):
                continue  # one bad entry loses that app's route only; reconcile restores it
        return routes

    def save(self, routes: dict[str, Route]) -> None:
        data = {"version": ROUTES_VERSION,
                "apps": {app: route.to_json() for app, route in sorted(routes.items())}}
        try:
            write_atomic(self.path, json.dumps(data, indent=2, sort_keys=True))
        except OSError as exc:
            raise RouterError(f"cannot write {self.path}: {exc}") from exc


class DirectRouter:
    """No proxy: the app's URL is its first serving container's own loopback port.

    The route is persisted in `routes.json` so that after a restart the agent still knows which
    containers serve. Switching is not zero-downtime (clients must follow the URL); use
    HAProxyRouter for that.
    """

    def __init__(self, path: Path) -> None:
        self.store = RouteStore(path)
        self.path = self.store.path
        self._lock = threading.Lock()

    def start(self) -> None:
        pass

    def close(self) -> None:
        pass

    def ensure_app(self, app: str, domains: Sequence[str] = (), check: Check | None = None) -> None:
        pass

    def switch(self, app: str, targets: Sequence[Target], check: Check | None = None) -> str:
        if not targets:
            raise RouterError(f"nothing to switch {app} to")
        url = f"http://127.0.0.1:{targets[0].host_port}"
        with self._lock:
            routes = self.store.load()
            routes[app] = Route(url=url, servers=tuple(
                Server("", t.container_id, t.host_port) for t in targets))
            self.store.save(routes)
        return url

    def drain(self, app: str, seconds: float, progress: Callable[[int], None] | None = None) -> str:
        return "no proxy: nothing to drain"

    def set_maintenance(self, app: str, on: bool, message: str = "") -> None:
        raise RouterError("maintenance mode needs the HAProxy front door (router haproxy)")

    def maintenance(self, app: str) -> tuple[bool, str]:
        return False, ""

    def draining(self, app: str) -> dict[int, int]:
        return {}

    def health(self, app: str) -> dict[str, ServerHealth]:
        return {cid: ServerHealth(Health.UNKNOWN, "no proxy: nothing checks it")
                for cid in self.serving(app)}

    def serving(self, app: str) -> tuple[str, ...]:
        with self._lock:
            route = self.store.load().get(app)
        return route.container_ids if route else ()

    def url(self, app: str) -> str | None:
        with self._lock:
            route = self.store.load().get(app)
        return route.url if route else None

    def remove(self, app: str) -> None:
        with self._lock:
            routes = self.store.load()
            if routes.pop(app, None) is not None:
                self.store.save(routes)

    def apps(self) -> list[str]:
        with self._lock:
            return sorted(self.store.load())
