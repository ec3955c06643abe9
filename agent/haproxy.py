"""The HAProxy router: zero-downtime switches through the front door service's HAProxy.

The only module (with `haproxy_config`, `haproxy_runtime`, `frontdoor_files` and
`frontdoor_client`, its parts) that talks to HAProxy. HAProxy is not the agent's: the front door
service (`agent.frontdoor`) runs it and outlives the agent, which adopts it at start and lets go
of it at close. A switch is `set server <be>/<slot> addr 127.0.0.1 port P` + `state
ready` for the new containers, `state drain` then (no session left, or drain time over)
`state maint` for the old ones; which slot is which comes from `agent.route_policy`. The
config is rewritten and reloaded seamlessly only when an app is added or removed, or its
domains change, never to switch a deploy.

Invariant: routes are persisted in `routes.json` *before* the runtime API is told, and the
config is rendered from them on every start and reload with the serving slots enabled at
their current addresses, so an agent or HAProxy restart brings every route back (the front
door service renders them too when it restarts HAProxy with no agent running).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

from agent import route_policy
from agent.haproxy_config import backend_name, maintenance_value
from agent.frontdoor_client import FrontDoorClient
from agent.frontdoor_files import FrontDoorFiles, Settings
from agent.haproxy_process import haproxy_binary
from agent.reload_group import ReloadGroup
from agent.route_policy import SLOTS, Check, Route, RoutePolicyError, Target
from agent.router import Health, RouteStore, RouterError, ServerHealth, UnknownRoute
from common.rules import RuleError, domains as check_domains

__all__ = ["HAProxyRouter", "haproxy_binary"]

log = logging.getLogger(__name__)

API_RETRY_SECONDS = 5.0
DRAIN_POLL = 0.05
DRAIN_POLL_LONG = 0.25
DEFAULT_SERVER_MAXCONN = 0  # 0: no per-container limit


def server_health(row: dict[str, str] | None) -> ServerHealth:
    """A `show stat` row as health: UP (also "UP 1/2", going down but still in rotation) is
    healthy, DOWN unhealthy; the detail is the last check's result ("L7STS 500", "L4CON")."""
    if row is None:
        return ServerHealth(Health.UNKNOWN, "not in the front door's backend")
    status = row.get("status") or ""
    check = " ".join(p for p in (row.get("check_status") or "", row.get("check_code") or "") if p)
    detail = f"{status}, last check {check}" if check else status
    if status.startswith("UP") or status == "no check":
        return ServerHealth(Health.HEALTHY, detail)
    if status.startswith("DOWN"):
        return ServerHealth(Health.UNHEALTHY, detail)
    return ServerHealth(Health.UNKNOWN, detail)


class HAProxyRouter:
    """The `Router` for zero-downtime switches (see module docstring)."""

    def __init__(self, state_dir: Path, *, front_host: str = "127.0.0.1", front_port: int = 8000,
                 binary: str | None = None, routes_file: Path | None = None,
                 server_maxconn: int | None = None, https_host: str = "",
                 https_port: int = 0) -> None:
        self.state_dir = Path(state_dir)
        if server_maxconn is None:
            server_maxconn = int(os.environ.get("TUGBOAT_SERVER_MAXCONN") or DEFAULT_SERVER_MAXCONN)
        self.server_maxconn = server_maxconn
        self.front_host = front_host
        self.front_port = front_port
        self.store = RouteStore(routes_file or self.state_dir / "routes.json")
        self.files = FrontDoorFiles.for_state(self.state_dir, self.store.path)
        self.run_dir = self.files.run_dir
        self._lock = threading.RLock()
        self._reloads = ReloadGroup(self._lock, lambda: self.process.reload())
        self._check_changed: set[str] = set()  # apps switched to a new check, reload after drain
        self._retired: dict[str, tuple[str, ...]] = {}  # app -> slots its last switch retired
        self._drain_ports: dict[str, dict[str, int]] = {}  # app -> draining slot -> host port
        binary = binary or haproxy_binary()
        if not binary:
            raise RouterError("haproxy is not installed; install it or use the direct router")
        self.process = FrontDoorClient(binary, self.files,
                                       Settings(front_host, front_port, server_maxconn,
                                                https_host if https_port else "", https_port))
        self.api = self.process.api

    # -- lifecycle
    @property
    def front_door(self) -> str:
        return f"{self.front_host}:{self.front_port}"

    def start(self) -> None:
        """Adopt the front door service (started detached when none runs); see frontdoor_client."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.run_dir.parent != self.state_dir:  # socket path too long: leave a pointer
            pointer = self.state_dir / "haproxy"
            if not pointer.exists():
                pointer.symlink_to(self.run_dir)
        self.process.start()
        self._render_missing_slots()

    def _render_missing_slots(self) -> None:
        """A front door rendered by an older agent may have fewer slots per backend than
        `SLOTS`: reload it once now (no deploy runs yet), so a switch never meets a slot that
        HAProxy does not have."""
        try:
            present: dict[str, set[str]] = {}
            for row in self.api.stats():
                present.setdefault(row.get("pxname") or "", set()).add(row.get("svname") or "")
        except (RouterError, OSError) as exc:
            log.warning("could not read the front door's backends: %s", exc)
            return
        with self._lock:
            apps = list(self.store.load())
        if any(not set(SLOTS) <= present.get(backend_name(app), set()) for app in apps):
            log.info("the front door has fewer slots than this agent uses: reloading it once")
            self.process.reload()

    def close(self) -> None:
        """Let go of the front door: it keeps serving every route without an agent."""
        self.process.close()

    def app_url(self, app: str) -> str:
        return f"http://{app}.localhost:{self.front_port}"

    # -- Router protocol
    def ensure_app(self, app: str, domains: Sequence[str] = (), check: Check | None = None) -> None:
        """Reloads only when the app is new or its domains changed. `check` is taken for a new
        app only: an app that serves keeps the check of what serves until `switch` (a deploy
        that fails its gate must not change how the old release is checked)."""
        try:
            wanted = tuple(d for d in check_domains(domains) if d != f"{app}.localhost")
        except RuleError as exc:
            raise RouterError(str(exc)) from exc
        with self._reloads.arriving(), self._lock:
            routes = self.store.load()
            try:
                route_policy.check_hosts(routes, app, wanted)
            except RoutePolicyError as exc:
                raise RouterError(str(exc)) from exc
            previous = routes.get(app)
            if previous is not None:
                check = previous.check
            elif check is None:
                check = Check()
            if previous is not None and previous.domains == wanted:
                return
            saved = (replace(previous, url=self.app_url(app), domains=wanted)
                     if previous is not None else
                     Route(url=self.app_url(app), domains=wanted, check=check))
            routes[app] = saved
            self.store.save(routes)
            ticket = self._reloads.ticket()
        try:
            self._reloads.wait(ticket)  # shared with the apps added meanwhile (agent.reload_group)
        except RouterError:
            with self._lock:
                routes = self.store.load()
                if routes.get(app) == saved:  # nothing changed it since: undo ours
                    if previous is None:
                        routes.pop(app, None)
                    else:
                        routes[app] = previous
                    self.store.save(routes)
            raise

    def switch(self, app: str, targets: Sequence[Target], check: Check | None = None) -> str:
        """The runtime API switch. A changed `check` (the new release's) is persisted now and
        rendered by a seamless reload once `drain` is over: a reload in the middle of the drain
        would hide the old worker's in-flight requests from the drain's count."""
        for target in targets:
            if not target.host_port:
                raise RouterError(f"container {target.container_id[:12]} has no published port")
        with self._lock:
            if app not in self.store.load():
                self.ensure_app(app, check=check)  # first route for the app: nothing serves it yet
            routes = self.store.load()
            previous = routes[app]
            busy = [slot for slot in previous.draining if self._in_flight(app, slot) > 0]
            try:
                route = route_policy.switch(previous, targets, SLOTS, busy)
            except RoutePolicyError as exc:
                raise RouterError(f"cannot switch {app}: {exc}") from exc
            routes[app] = route = replace(route, url=self.app_url(app),
                                          check=check or previous.check)
            # Where the slots that drain now point: a reload renders them without an address,
            # and their open connections are counted by it (`_open_by_port`).
            self._drain_ports[app] = {
                **{slot: port for slot, port in self._drain_ports.get(app, {}).items() if slot in route.draining},
                **{srv.slot: srv.host_port for srv in previous.servers if srv.slot in route.draining}}
            # Persist first: a reload or restart from now on renders the new route.
            self.store.save(routes)
            try:
                self._apply(app, route)
            except (RouterError, OSError) as exc:
                routes[app] = previous
                self.store.save(routes)
                self._restore_runtime(app, previous)
                ids = ", ".join(t.container_id[:12] for t in targets)
                raise RouterError(f"cannot switch {app} to {ids}: {exc}") from exc
            if route.check != previous.check:
                self._check_changed.add(app)
            # What this switch took out of rotation: the next `drain` of the app waits for these
            # only (an older release still draining in the background has its own deadline).
            self._retired[app] = tuple(s for s in route.draining if s not in previous.draining)
            return route.url

    def _reload_for_check(self, app: str) -> None:
        with self._lock:
            if app not in self._check_changed:
                return
            self._check_changed.discard(app)
            try:
                self.process.reload()
            except RouterError as exc:  # traffic is switched; the next reload renders it
                log.warning("could not reload for the new health check of %s: %s", app, exc)

    def drain(self, app: str, seconds: float, progress: Callable[[int], None] | None = None) -> str:
        """Wait until the slots the app's last switch retired hold no connection (requests in
        flight, queued ones, and upgraded tunnels: WebSockets and event streams count in the
        slot's `scur` until they close), at most `seconds`; then take them out for good.
        `progress(open)` hears the count whenever it changes. When the last switch retired nothing
        (reconcile re-applying a route after a restart), every draining slot of the app is
        drained: `drain(app, 0)` then takes stale ones out at once."""
        be = backend_name(app)
        with self._lock:
            route = self.store.load().get(app)
            retired = self._retired.pop(app, None)
        slots = tuple(s for s in (retired or (route.draining if route else ()))
                      if route and s in route.draining)
        if not slots:
            self._reload_for_check(app)
            return "nothing to drain"
        started = time.monotonic()
        deadline = started + max(0.0, seconds)
        told = -1
        while True:
            in_flight = sum(self._open_by_port(app, slots).values())
            if progress is not None and in_flight != told:
                progress(in_flight)
                told = in_flight
            now = time.monotonic()
            if in_flight <= 0 or now >= deadline:
                break
            # Fast at first (in-flight requests end in milliseconds), then calmer for the
            # connections that stay open for minutes or hours.
            time.sleep(min(DRAIN_POLL if now - started < 2 else DRAIN_POLL_LONG, deadline - now))
        with self._lock:
            routes = self.store.load()
            current = routes.get(app)
            if current is not None:
                done = [s for s in slots if s in current.draining]
                for slot in done:
                    try:
                        self._api_retry(lambda: self.api.set_server_state(be, slot, "maint"))
                    except (RouterError, OSError) as exc:
                        log.warning("could not put %s/%s in maintenance: %s", be, slot, exc)
                routes[app] = route_policy.drained(current, done)
                self.store.save(routes)
        self._reload_for_check(app)
        waited = time.monotonic() - started
        names = "slot " + ", ".join(slots) if len(slots) == 1 else "slots " + ", ".join(slots)
        if in_flight > 0:
            return (f"drain of {names} stopped at its deadline after {waited:.1f}s with "
                    f"{in_flight} connection(s) still open")
        return f"{names} drained in {waited:.2f}s"

    def set_maintenance(self, app: str, on: bool, message: str = "") -> None:
        """Turn the app's maintenance page on or off: persisted in its route first (a reload or
        a restart of HAProxy renders it), then put in the running front door through the
        maintenance map, with no reload and without touching a container."""
        with self._lock:
            routes = self.store.load()
            previous = routes.get(app)
            if previous is None:
                raise UnknownRoute(f"app {app} has no route on this server: deploy it first")
            routes[app] = replace(previous, maintenance=on, maintenance_message=message if on else "")
            self.store.save(routes)
            try:
                if on:
                    self._api_retry(lambda: self.api.set_map(
                        str(self.files.maintenance_map), backend_name(app),
                        maintenance_value(app, message)))
                else:
                    self._api_retry(lambda: self.api.del_map(str(self.files.maintenance_map),
                                                             backend_name(app)))
            except (RouterError, OSError) as exc:
                routes[app] = previous
                self.store.save(routes)
                raise RouterError(f"the front door did not take maintenance mode of {app}: "
                                  f"{exc}") from exc

    def maintenance(self, app: str) -> tuple[bool, str]:
        with self._lock:
            route = self.store.load().get(app)
        return (route.maintenance, route.maintenance_message) if route else (False, "")

    def draining(self, app: str) -> dict[int, int]:
        """The open connections of each draining slot of the app, by the host port it points
        at (the old container's): what a retiring release still holds."""
        with self._lock:
            route = self.store.load().get(app)
        if route is None or not route.draining:
            return {}
        return self._open_by_port(app, route.draining)

    def serving(self, app: str) -> tuple[str, ...]:
        with self._lock:
            route = self.store.load().get(app)
        return route.container_ids if route else ()

    def url(self, app: str) -> str | None:
        with self._lock:
            route = self.store.load().get(app)
        return route.url if route and route.servers else None

    def apps(self) -> list[str]:
        with self._lock:
            return sorted(self.store.load())

    def health(self, app: str) -> dict[str, ServerHealth]:
        """Each serving container's health as HAProxy's checks see it (`show stat`); UNKNOWN
        with the reason when HAProxy cannot be asked."""
        with self._lock:
            route = self.store.load().get(app)
        if route is None or not route.servers:
            return {}
        try:
            rows = {row.get("svname"): row for row in self.api.stats()
                    if row.get("pxname") == backend_name(app)}
        except (RouterError, OSError) as exc:
            return {s.container_id: ServerHealth(Health.UNKNOWN, f"front door not answering: {exc}")
                    for s in route.servers}
        return {s.container_id: server_health(rows.get(s.slot)) for s in route.servers}

    def remove(self, app: str) -> None:
        with self._lock:
            routes = self.store.load()
            if routes.pop(app, None) is None:
                return
            self.store.save(routes)
            self.process.reload()

    # -- runtime API
    def _open_by_port(self, app: str, slots: Sequence[str]) -> dict[int, int]:
        """Sessions and queued requests of the containers these slots point at, by host port,
        in the current HAProxy worker and in every older one a reload left serving its open
        connections (their tunnels live there until they close, not in the new worker, so a
        drain that counted the current worker alone would end while they are open). Counted by
        the container's address: a reload renders a draining slot without it, and a slot name
        may point elsewhere in an older config. Empty while HAProxy restarts (it comes back
        without the old connections anyway)."""
        backend = backend_name(app)
        try:
            current = [r for r in self.api.stats() if r.get("pxname") == backend]
        except (RouterError, OSError):
            return {}
        known = self._drain_ports.get(app, {})
        ports = {}
        for row in current:
            if row.get("svname") not in slots:
                continue
            _, _, port = (row.get("addr") or "").rpartition(":")
            port = int(port) if port.isdigit() and int(port) > 1 else known.get(row["svname"], 0)
            if port:
                ports[f"127.0.0.1:{port}"] = port
        counts = dict.fromkeys(ports.values(), 0)
        for rows in [current, *self.process.old_worker_stats()]:
            for row in rows:
                if row.get("pxname") == backend and row.get("addr") in ports:
                    counts[ports[row["addr"]]] += _open(row)
        return counts

    def _in_flight(self, app: str, slot: str) -> int:
        return sum(self._open_by_port(app, (slot,)).values())

    def _apply(self, app: str, route: Route) -> None:
        be = backend_name(app)
        for want in route_policy.slot_states(route, SLOTS):
            if want.state == "ready":
                self._api_retry(lambda: self.api.set_server_addr(be, want.slot, "127.0.0.1",
                                                                 want.host_port))
            self._api_retry(lambda: self.api.set_server_state(be, want.slot, want.state))

    def _api_retry(self, call: Callable[[], None]) -> None:
        """Run a runtime API call, waiting out a restart of HAProxy by its supervisor."""
        deadline = time.monotonic() + API_RETRY_SECONDS
        while True:
            try:
                return call()
            except OSError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)

    def _restore_runtime(self, app: str, route: Route) -> None:
        try:
            self._apply(app, route_policy.drained(route, route.draining))
        except (RouterError, OSError) as exc:
            log.warning("could not restore the route of %s: %s", app, exc)


def _open(row: dict[str, str]) -> int:
    try:
        return int(row.get("scur") or 0) + int(row.get("qcur") or 0)
    except ValueError:
        return 0
