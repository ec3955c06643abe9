"""Release steps: start the new container, wait for health, switch traffic, stop the old one.

Zero-downtime by construction: the old container keeps serving until the new one has passed
its health check and the router points at it; any failure or cancel before that removes only
the new container.
"""

from __future__ import annotations

import enum
import secrets
import time
from dataclasses import dataclass, field
from typing import Iterator

from agent import labels as L
from agent.docker_engine import ContainerRecord, ContainerSpec, DockerEngine, EngineError, NotFound
from agent.health import HealthPolicy, probe
from agent.locks import KeyedLocks
from agent.operations import CancelToken
from agent.router import Router, RouterError, Target

DEFAULT_HEALTH_TIMEOUT = 30
DEFAULT_STOP_GRACE = 10
DEFAULT_DRAIN_SECONDS = 5
POLL_INTERVAL = 0.05
LOG_LINES = 20
RESTART_POLICY = "unless-stopped"


class Step(enum.Enum):
    START = "start"
    HEALTH = "health"
    SWITCH = "switch"
    STOP_OLD = "stop_old"
    DONE = "done"


class Failure(enum.Enum):
    BUILD = "build"
    START = "start"
    HEALTH = "health"
    SWITCH = "switch"
    CANCELLED = "cancelled"
    INTERNAL = "internal"


@dataclass(frozen=True)
class DeploySpec:
    app: str
    deployment_id: int
    image: str
    commit_sha: str
    port: int
    health_path: str = "/"
    health_timeout_seconds: int = DEFAULT_HEALTH_TIMEOUT
    stop_grace_seconds: int = DEFAULT_STOP_GRACE
    env: dict[str, str] = field(default_factory=dict)
    health: HealthPolicy = field(default_factory=HealthPolicy)
    stop_signal: str = "SIGTERM"
    drain_seconds: int = DEFAULT_DRAIN_SECONDS
    domains: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeployProgress:
    step: Step
    message: str
    container_id: str = ""
    url: str = ""
    failure: Failure | None = None
    error: str = ""


def container_name(app: str, deployment_id: int) -> str:
    """Readable and unique: labels, not names, identify a container, and the same app and
    deployment id can meet on one engine (a reset database, a second control plane)."""
    return f"{app}-{deployment_id}-{secrets.token_hex(3)}"


class _Failed(Exception):
    def __init__(self, step: Step, failure: Failure, error: str) -> None:
        super().__init__(error)
        self.step, self.failure, self.error = step, failure, error


class Releaser:
    """Runs deploys (one at a time per app) and reconciles state after an agent restart."""

    def __init__(self, engine: DockerEngine, router: Router, agent_id: str = "") -> None:
        self.engine = engine
        self.router = router
        self.agent_id = agent_id
        self._locks = KeyedLocks()

    # ---- deploy ---------------------------------------------------------------------------
    def deploy(self, spec: DeploySpec, token: CancelToken) -> Iterator[DeployProgress]:
        """Yield progress; the last event is DONE or carries a failure."""
        with self._locks.hold(spec.app):
            new: ContainerRecord | None = None
            switched = False
            try:
                if token.cancelled:
                    raise _Failed(Step.START, Failure.CANCELLED, "cancelled")
                name = container_name(spec.app, spec.deployment_id)
                yield DeployProgress(Step.START, f"starting {name} from {spec.image}")
                try:
                    # May reload the proxy (new app, changed domains): before anything switches.
                    self.router.ensure_app(spec.app, spec.domains)
                except RouterError as exc:
                    raise _Failed(Step.START, Failure.SWITCH, f"cannot route {spec.app}: {exc}") from exc
                self._clear_stale(spec.app, spec.deployment_id)
                new = self._start(spec, name)
                yield DeployProgress(Step.START, f"started {name}", container_id=new.id)

                what = ("waiting for the Docker HEALTHCHECK" if spec.health.use_docker_healthcheck
                        else f"probing {new.direct_url}{spec.health_path}")
                yield DeployProgress(Step.HEALTH, what, container_id=new.id)
                detail = self._wait_healthy(spec, new, token)
                yield DeployProgress(Step.HEALTH, f"healthy: {detail}", container_id=new.id)

                self._make_permanent(new)
                if not token.protect():
                    raise _Failed(Step.SWITCH, Failure.CANCELLED, "cancelled")
                try:
                    url = self.router.switch(spec.app, Target(new.id, new.host_port or 0))
                except RouterError as exc:
                    raise _Failed(Step.SWITCH, Failure.SWITCH, str(exc)) from exc
                switched = True
                yield DeployProgress(Step.SWITCH, f"traffic now goes to {name} at {url}",
                                     container_id=new.id, url=url)

                drained = self.router.drain(spec.app, spec.drain_seconds or DEFAULT_DRAIN_SECONDS)
                yield DeployProgress(Step.STOP_OLD, f"old version: {drained}", container_id=new.id)
                for message in self._stop_others(spec.app, new.id, spec.stop_grace_seconds):
                    yield DeployProgress(Step.STOP_OLD, message, container_id=new.id)
                yield DeployProgress(Step.DONE, f"{spec.app} serves {spec.commit_sha[:12]} at {url}",
                                     container_id=new.id, url=url)
            except _Failed as failed:
                if new is not None and not switched:
                    self._discard(new.id)
                yield DeployProgress(failed.step, f"{failed.step.value} failed: {failed.error}",
                                     container_id=new.id if new else "",
                                     failure=failed.failure, error=failed.error)
            except GeneratorExit:
                # The stream consumer went away (client cancelled): never leave a half deploy.
                if new is not None and not switched:
                    self._discard(new.id)
                raise
            except Exception as exc:  # a bug or an unexpected engine error: still no half deploy
                if new is not None and not switched:
                    self._discard(new.id)
                yield DeployProgress(Step.STOP_OLD if switched else Step.START,
                                     f"internal agent error: {exc}",
                                     container_id=new.id if new else "",
                                     failure=Failure.INTERNAL, error=f"internal agent error: {exc}")

    def _clear_stale(self, app: str, deployment_id: int) -> None:
        """A retried deployment (after a control-plane restart) drops what its earlier attempt
        started, unless that container already serves."""
        serving = self.router.current(app)
        for record in self.engine.list(app):
            if record.deployment_id == deployment_id and record.id != serving:
                self._discard(record.id)

    def _start(self, spec: DeploySpec, name: str) -> ContainerRecord:
        labels = {L.MANAGED: "true", L.APP: spec.app, L.DEPLOYMENT: str(spec.deployment_id),
                  L.COMMIT: spec.commit_sha}
        if self.agent_id:
            labels[L.AGENT] = self.agent_id
        try:
            # No restart policy until healthy: Docker restarting a crashing container would
            # hide its exit code and keep a broken release looping. See _make_permanent.
            record = self.engine.run(ContainerSpec(name=name, image=spec.image, port=spec.port,
                                                   env=dict(spec.env), labels=labels,
                                                   restart_policy="no",
                                                   stop_signal=spec.stop_signal or "SIGTERM"))
        except EngineError as exc:
            raise _Failed(Step.START, Failure.START, f"cannot start {name}: {exc}") from exc
        return record

    def _make_permanent(self, new: ContainerRecord) -> None:
        """Healthy now: let Docker restart it from here on (crashes, host reboots)."""
        try:
            self.engine.set_restart_policy(new.id, RESTART_POLICY)
        except EngineError as exc:
            raise _Failed(Step.HEALTH, Failure.START,
                          f"cannot set restart policy on {new.name}: {exc}") from exc

    def _wait_healthy(self, spec: DeploySpec, new: ContainerRecord, token: CancelToken) -> str:
        """Until healthy or the deadline: the container must keep running (no exit, no OOM
        kill) and pass the HTTP probes (`healthy_threshold` in a row) or Docker's HEALTHCHECK."""
        policy = spec.health
        timeout = spec.health_timeout_seconds or DEFAULT_HEALTH_TIMEOUT
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        streak = 0
        while True:
            try:
                state = self.engine.inspect(new.id)
            except NotFound:
                raise _Failed(Step.START, Failure.START, f"container {new.name} disappeared")
            if state.oom_killed:
                raise _Failed(Step.START, Failure.START,
                              f"container was OOM-killed (exit code {state.exit_code}) before it "
                              "was healthy" + self._logs_suffix(new.id))
            if state.state not in ("running", "created") or state.restart_count > 0:
                raise _Failed(Step.START, Failure.START,
                              f"container exited with code {state.exit_code} before it was healthy"
                              + self._logs_suffix(new.id))
            if not state.host_port:
                raise _Failed(Step.START, Failure.START,
                              f"{new.name} has no port published for {spec.port}/tcp")
            new.host_port = state.host_port
            if policy.use_docker_healthcheck:
                if state.state == "running" and not state.health_status:
                    raise _Failed(Step.HEALTH, Failure.HEALTH,
                                  "docker health check requested but the image has no HEALTHCHECK")
                if state.health_status == "healthy":
                    return "Docker HEALTHCHECK reports healthy"
                if state.health_status == "unhealthy":
                    raise _Failed(Step.HEALTH, Failure.HEALTH,
                                  "Docker HEALTHCHECK reports unhealthy; last check output: "
                                  f"{state.health_output or '(none)'}" + self._logs_suffix(new.id))
                last = f"Docker HEALTHCHECK status {state.health_status or 'unknown'}"
                if state.health_output:
                    last += f" ({state.health_output[:200]})"
            else:
                probe_timeout = policy.probe_timeout_ms / 1000
                result = probe(new.direct_url, spec.health_path or "/",
                               timeout=max(0.05, min(probe_timeout, deadline - time.monotonic())),
                               status_min=policy.status_min, status_max=policy.status_max)
                if result.ok:
                    streak += 1
                    if streak >= policy.healthy_threshold:
                        return result.detail + (f" ({streak} in a row)" if streak > 1 else "")
                else:
                    streak = 0
                last = result.detail
            if time.monotonic() >= deadline:
                raise _Failed(Step.HEALTH, Failure.HEALTH,
                              f"not healthy within {timeout}s; last: {last}"
                              + self._logs_suffix(new.id))
            if token.wait(min(policy.interval_ms / 1000, max(0.0, deadline - time.monotonic()))
                          or POLL_INTERVAL / 10):
                raise _Failed(Step.HEALTH, Failure.CANCELLED, "cancelled")

    def _logs_suffix(self, container_id: str) -> str:
        lines = self.engine.logs_tail(container_id, LOG_LINES)
        return ("\nlast log lines:\n" + "\n".join(lines)) if lines else "\n(no log output)"

    def _stop_others(self, app: str, keep: str, grace: int) -> Iterator[str]:
        grace = grace or DEFAULT_STOP_GRACE
        for record in self.engine.list(app):
            if record.id == keep:
                continue
            try:
                if record.running:
                    self.engine.stop(record.id, timeout=grace)
                self.engine.remove(record.id, force=True)
                yield f"stopped and removed {record.name}"
            except EngineError as exc:
                yield f"could not remove {record.name}: {exc}"

    def _discard(self, container_id: str) -> None:
        try:
            self.engine.remove(container_id, force=True)
        except EngineError:
            pass

    # ---- restart --------------------------------------------------------------------------
    def reconcile(self) -> dict[str, str]:
        """After a restart: settle which container serves each app and drop leftovers.

        The routed container keeps serving; if the route is missing or stale, the newest
        running container takes over. Every other container of the app belonged to an
        interrupted deploy (never got traffic, or an old one not yet stopped) and is removed.
        Returns app -> serving container id.
        """
        serving: dict[str, str] = {}
        by_app: dict[str, list[ContainerRecord]] = {}
        for record in self.engine.list():
            by_app.setdefault(record.app, []).append(record)
        for app in set(by_app) | set(getattr(self.router, "apps", lambda: [])()):
            with self._locks.hold(app):
                records = by_app.get(app, [])
                if not records:
                    self.router.remove(app)
                    continue
                routed = self.router.current(app)
                chosen = next((r for r in records if r.id == routed), None)
                if chosen is None:
                    running = [r for r in records if r.running]
                    chosen = (running or records)[0]  # list is newest first
                if chosen.host_port:
                    try:
                        self.router.switch(app, Target(chosen.id, chosen.host_port))
                        self.router.drain(app, 0)  # a stale route's slot: out at once
                    except RouterError:
                        pass  # keeps the persisted route; the next deploy fixes it
                serving[app] = chosen.id
                for record in records:
                    if record.id != chosen.id:
                        self._discard(record.id)
        return serving
