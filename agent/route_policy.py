"""The route policy: which server slot takes a new container, what drains, which hosts clash.

Pure: typed routes in, typed routes out, no proxy and no files. The HAProxy adapter carries a
route out over the runtime API and renders its config from it; the direct router only keeps
the URL. A route holds N servers, so replicas are data, not a rewrite.

A backend has a fixed pool of slots (`SLOTS`: blue and green for one container per app). A
switch puts every new container in a slot that neither serves nor drains, taking a draining
slot only when no free one is left (that cuts the older drain short, as a second switch in a
row must); the containers that served before drain. A container that already serves keeps
its slot, so re-applying a route after a restart (a container whose port moved) drains
nothing.

A route also carries the app's health check (`Check`), so the front door checks every server
between deploys with the same rule the deploy gate used.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, Mapping, Sequence

from common.rules import HEALTH, app_hosts

# Blue and green, and more: an old release keeps its slot while it still holds open connections
# (WebSockets, event streams) after a switch, up to its drain deadline, so a few deploys in a
# row each leave one behind.
SLOTS = ("blue", "green", "slot3", "slot4", "slot5", "slot6", "slot7", "slot8")


class RoutePolicyError(ValueError):
    """The wanted route cannot be made (no free slot, a host taken by another app)."""


@dataclass(frozen=True)
class Target:
    """A container that can take an app's traffic."""

    container_id: str
    host_port: int  # its port published on 127.0.0.1


@dataclass(frozen=True)
class Server:
    """A container in rotation, in one slot of the app's backend."""

    slot: str
    container_id: str
    host_port: int


@dataclass(frozen=True)
class Check:
    """How the front door checks the app's servers between deploys: the app's own health check,
    a GET of `path` whose status must be within [status_min, status_max]. A server leaves
    rotation after `fall` failed checks in a row and comes back after `rise` passed ones.

    Always HTTP, never a bare TCP connect: Docker's proxy accepts a connection on the published
    port whenever the container runs, even while nothing listens inside (measured: connect
    succeeds, then a reset), so a TCP check would pass for a dead app.
    """

    path: str = HEALTH.path
    status_min: int = HEALTH.status_min
    status_max: int = HEALTH.status_max
    # Only for routes saved before checks travelled with them; a deploy sets the app's own.
    interval_ms: int = 1000
    timeout_ms: int = HEALTH.probe_timeout_ms
    rise: int = HEALTH.healthy_threshold
    fall: int = 2

    def to_json(self) -> dict:
        return {"path": self.path, "status_min": self.status_min, "status_max": self.status_max,
                "interval_ms": self.interval_ms, "timeout_ms": self.timeout_ms,
                "rise": self.rise, "fall": self.fall}

    @classmethod
    def from_json(cls, data: Mapping) -> "Check":
        default = cls()
        return cls(path=str(data.get("path") or default.path),
                   **{name: int(data.get(name) or getattr(default, name))
                      for name in ("status_min", "status_max", "interval_ms", "timeout_ms",
                                   "rise", "fall")})


# The app answers HTTP at all: the check when its own does not apply (the Docker-HEALTHCHECK
# mode, which only Docker can run) or is not known (a route saved before checks existed).
ANSWERS_HTTP = Check(status_min=100, status_max=599)


@dataclass(frozen=True)
class Route:
    """How the front door reaches one app."""

    url: str = ""
    domains: tuple[str, ...] = ()
    servers: tuple[Server, ...] = ()
    # Slots that take no new request and finish their in-flight ones (the previous release).
    draining: tuple[str, ...] = ()
    check: Check = ANSWERS_HTTP
    # Maintenance mode: the front door answers 503 with a page carrying this message (empty:
    # the default text) instead of passing requests on; the containers keep running.
    maintenance: bool = False
    maintenance_message: str = ""

    @property
    def container_ids(self) -> tuple[str, ...]:
        return tuple(s.container_id for s in self.servers)

    def to_json(self) -> dict:
        data = {"url": self.url, "domains": list(self.domains), "draining": list(self.draining),
                "check": self.check.to_json(),
                "servers": [{"slot": s.slot, "container_id": s.container_id,
                             "host_port": s.host_port} for s in self.servers]}
        if self.maintenance:
            data.update(maintenance=True, maintenance_message=self.maintenance_message)
        return data

    @classmethod
    def from_json(cls, data: Mapping) -> "Route":
        """Reads this format and version 1 (one `container_id`/`slot`/`host_port`, `draining`
        a slot name or ""); a route saved without a check gets `ANSWERS_HTTP`."""
        if "servers" in data:
            servers = tuple(Server(str(s.get("slot") or ""), str(s.get("container_id") or ""),
                                   int(s.get("host_port") or 0))
                            for s in data.get("servers") or [] if s.get("container_id"))
            draining = tuple(data.get("draining") or ())
        else:
            servers = ((Server(str(data.get("slot") or ""), str(data["container_id"]),
                               int(data.get("host_port") or 0)),)
                       if data.get("container_id") else ())
            draining = (data["draining"],) if data.get("draining") else ()
        return cls(url=str(data.get("url") or ""), domains=tuple(data.get("domains") or ()),
                   servers=servers, draining=draining,
                   check=Check.from_json(data["check"]) if data.get("check") else ANSWERS_HTTP,
                   maintenance=bool(data.get("maintenance")),
                   maintenance_message=str(data.get("maintenance_message") or ""))


def hosts(app: str, route: Route) -> list[str]:
    """Every host name routed to the app."""
    return app_hosts(app, route.domains)


def check_hosts(routes: Mapping[str, Route], app: str, domains: Iterable[str]) -> None:
    """A host belongs to one app: refuse domains another app already has."""
    wanted = set(app_hosts(app, list(domains)))
    for other, route in routes.items():
        if other == app:
            continue
        clash = wanted.intersection(hosts(other, route))
        if clash:
            raise RoutePolicyError(f"host {sorted(clash)[0]} is already routed to app {other}")


def switch(route: Route, targets: Sequence[Target], pool: Sequence[str] = SLOTS,
           busy: Iterable[str] = ()) -> Route:
    """`route` with exactly `targets` in rotation; what served before and is not kept drains.

    `busy` are draining slots that still hold open connections: never handed to a new
    container (its address would replace the old one's under them, and their count would mix
    with the new container's). A draining slot with nothing open is reused when no free one is
    left, which ends that drain at once."""
    if not targets:
        raise RoutePolicyError("a switch needs at least one container")
    held = set(busy)
    kept = {s.container_id: s for s in route.servers}
    serving = {s.slot for s in route.servers}
    free = [s for s in pool if s not in serving and s not in route.draining]
    free += [s for s in route.draining if s not in serving and s not in held]
    servers = []
    for target in targets:
        if target.container_id in kept:
            slot = kept[target.container_id].slot
        elif free:
            slot = free.pop(0)
        else:
            raise RoutePolicyError(
                f"{len(targets)} containers do not fit the {len(pool)} slots of the backend beside "
                f"the ones that serve and the {len(held)} older releases still holding open "
                "connections; retry when those close or reach their drain deadline")
        servers.append(Server(slot, target.container_id, target.host_port))
    taken = {s.slot for s in servers}
    retired = [s.slot for s in route.servers if s.slot not in taken]
    still = [s for s in route.draining if s not in taken]
    return replace(route, servers=tuple(servers), draining=tuple(dict.fromkeys(retired + still)))


def drained(route: Route, slots: Iterable[str]) -> Route:
    """`route` once `slots` have finished draining and left the rotation for good."""
    done = set(slots)
    return replace(route, draining=tuple(s for s in route.draining if s not in done))


@dataclass(frozen=True)
class SlotState:
    """What one slot of the backend must be set to: `ready` at a port, `drain` or `maint`."""

    slot: str
    state: str
    host_port: int = 0


def slot_states(route: Route, pool: Sequence[str] = SLOTS) -> list[SlotState]:
    """The runtime state of every slot for `route`: serving slots first (so traffic has a place
    to go before anything drains), then draining ones, then the rest in maintenance."""
    serving = [SlotState(s.slot, "ready", s.host_port) for s in route.servers]
    used = {s.slot for s in route.servers}
    draining = [SlotState(s, "drain") for s in route.draining if s not in used]
    rest = [SlotState(s, "maint") for s in pool if s not in used and s not in route.draining]
    return serving + draining + rest
