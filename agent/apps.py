"""App housekeeping: list, stop, remove, logs and engine info — everything but build/deploy."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from agent import __version__
from agent import volumes as app_volumes
from agent.docker_engine import ContainerRecord, DockerEngine, EngineError
from agent.repo_cache import RepoCache
from agent.router import Health, Router, ServerHealth
from common.specs import AgentInfo


class UnknownApp(LookupError):
    """The agent manages nothing for that app."""


@dataclass(frozen=True)
class ManagedContainer:
    record: ContainerRecord
    serving: bool
    # The router's URL for the app, on the serving container only.
    url: str = ""
    # As the router's checks see it; UNKNOWN for a container out of rotation.
    health: ServerHealth = ServerHealth(Health.UNKNOWN, "not in rotation")
    # An old release after a switch: it takes no new connection and keeps its open ones
    # (WebSockets, event streams) until they close or its drain deadline.
    draining: bool = False
    open_connections: int = 0


@dataclass(frozen=True)
class RemovedApp:
    containers: int
    volumes: app_volumes.VolumeRemoval


class AppAdmin:
    def __init__(self, engine: DockerEngine, router: Router, cache: RepoCache, archive=None) -> None:
        self.engine = engine
        self.router = router
        self.cache = cache
        self.archive = archive  # agent.log_archive.LogArchive, or None

    def list_containers(self, app: str = "") -> list[ManagedContainer]:
        """Managed containers, newest first, each flagged when the router sends traffic to it."""
        routed: dict[str, tuple[str, ...]] = {}
        health: dict[str, dict[str, ServerHealth]] = {}
        draining: dict[str, dict[int, int]] = {}
        out = []
        for record in self.engine.list(app or None):
            if record.app not in routed:
                routed[record.app] = self.router.serving(record.app)
                health[record.app] = self.router.health(record.app)
                draining[record.app] = self.router.draining(record.app)
            serving = record.id in routed[record.app]
            retiring = not serving and record.running and record.host_port in draining[record.app]
            out.append(ManagedContainer(
                record, serving, (self.router.url(record.app) or "") if serving else "",
                health[record.app].get(record.id, ManagedContainer.health), draining=retiring,
                open_connections=draining[record.app].get(record.host_port, 0) if retiring else 0))
        return out

    def serving_container(self, app: str) -> ContainerRecord:
        records = self.engine.list(app)
        if not records:
            raise UnknownApp(f"no containers for app {app!r} on this agent; deploy it first")
        routed = self.router.serving(app)
        for record in records:
            if record.id in routed:
                return record
        running = [r for r in records if r.running]
        return (running or records)[0]

    def stop_app(self, app: str) -> int:
        records = self.engine.list(app)
        if not records:
            raise UnknownApp(f"no containers for app {app!r} on this agent")
        stopped = 0
        for record in records:
            if record.running or record.state == "restarting":
                self.engine.stop(record.id, timeout=10)
                stopped += 1
        return stopped

    def remove_app(self, app: str, *, delete_volumes: bool = False) -> RemovedApp:
        """Remove containers, `<app>:*` images, the route and the repository cache; the app's
        named volumes only with `delete_volumes` (else they are kept and named).

        NOT_FOUND only when nothing at all is known, so a half-removed app can be removed again
        (an app left with only its kept volumes is known: deleted again with `delete_volumes`).
        """
        records = self.engine.list(app)
        known = bool(records) or bool(self.router.serving(app)) or self.cache.path(app).exists()
        for record in records:
            if self.archive is not None:
                self.archive.keep(record.id)  # its logs stay readable after the app is gone
            self.engine.remove(record.id, force=True)
        images = self.engine.remove_images(app)
        self.router.remove(app)
        self.cache.remove(app)
        volumes = app_volumes.remove(self.engine, app, delete=delete_volumes)
        if not known and not images and not (volumes.removed or volumes.kept):
            raise UnknownApp(f"app {app!r} is unknown to this agent")
        return RemovedApp(len(records), volumes)

    def info(self) -> AgentInfo:
        try:
            docker_version = self.engine.version()
        except EngineError:
            docker_version = ""
        running = self.engine.running_count()
        return AgentInfo(__version__, docker_version, socket.gethostname(), running)
