"""Carries a release out: the planner's steps against the Docker engine and the router.

What to do is decided in `agent.planner` (pure); this module only runs the steps, turns what
happens into progress for the Deploy stream, and keeps the one guarantee that needs the
engine: anything that fails or is cancelled before the switch removes the new containers
only, so the old ones keep serving.
"""

from __future__ import annotations

import enum
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Iterator

from agent import labels as L
from agent import planner
from agent.docker_engine import (ContainerRecord, ContainerSpec, DockerEngine, EngineError,
                                 NotOnEngine)
from agent.health import HealthPolicy, probe
from agent.locks import KeyedLocks
from agent.operations import CancelToken
from agent.planner import Action, Observed, Release
from agent.route_policy import ANSWERS_HTTP
from agent.router import Check, Router, RouterError, Target
from common.phases import Phase
from common.rules import DRAIN_SECONDS, HEALTH, STOP_GRACE_SECONDS

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.05
LOG_LINES = 20
RESTART_POLICY = "unless-stopped"
GATE_POLICY = "no"


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
    health_path: str = HEALTH.path
    health_timeout_seconds: int = HEALTH.timeout_seconds
    stop_grace_seconds: int = STOP_GRACE_SECONDS
    env: dict[str, str] = field(default_factory=dict)
    health: HealthPolicy = field(default_factory=HealthPolicy)
    stop_signal: str = "SIGTERM"
    drain_seconds: int = DRAIN_SECONDS
    domains: tuple[str, ...] = ()
    replicas: int = 1


@dataclass(frozen=True)
class DeployProgress:
    """One event of a deploy. The last one is `Phase.DONE`, or carries a failure and the
    phase it happened in."""

    phase: Phase
    message: str
    container_id: str = ""
    url: str = ""
    failure: Failure | None = None
    error: str = ""


def container_name(app: str, deployment_id: int) -> str:
    """Readable and unique: labels, not names, identify a container, and the same app and
    deployment id can meet on one engine (a reset database, a second control plane)."""
    return f"{app}-{deployment_id}-{secrets.token_hex(3)}"


def front_door_check(spec: DeploySpec) -> Check:
    """The router's check between deploys: the deploy gate's own rule. In the Docker-HEALTHCHECK
    mode (a check only Docker can run) the router asks that the app answers HTTP at all."""
    policy = spec.health
    healthy = ((ANSWERS_HTTP.status_min, ANSWERS_HTTP.status_max) if policy.use_docker_healthcheck
               else (policy.status_min, policy.status_max))
    return Check(path=spec.health_path or HEALTH.path, status_min=healthy[0],
                 status_max=healthy[1], interval_ms=policy.interval_ms,
                 timeout_ms=policy.probe_timeout_ms, rise=policy.healthy_threshold)


def observe(record: ContainerRecord) -> Observed:
    """What the planner needs to know about a container."""
    return Observed(id=record.id, deployment_id=record.deployment_id, running=record.running,
                    gated=record.restart_policy not in ("", GATE_POLICY),
                    host_port=record.host_port or 0)


class _Failed(Exception):
    def __init__(self, phase: Phase, failure: Failure, error: str) -> None:
        super().__init__(error)
        self.phase, self.failure, self.error = phase, failure, error


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
            new: list[ContainerRecord] = []
            gated: set[str] = set()  # new containers that passed their gate
            switched = False
            try:
                if token.cancelled:
                    raise _Failed(Phase.START, Failure.CANCELLED, "cancelled")
                yield DeployProgress(Phase.START, f"starting {spec.app} from {spec.image}")
                try:
                    # May reload the proxy (new app, changed domains): before anything switches.
                    self.router.ensure_app(spec.app, spec.domains, front_door_check(spec))
                except RouterError as exc:
                    raise _Failed(Phase.START, Failure.SWITCH, f"cannot route {spec.app}: {exc}") from exc
                records = {r.id: r for r in self.engine.list(spec.app)}
                steps = planner.plan_release(
                    Release(spec.deployment_id, spec.replicas),
                    [observe(r) for r in records.values()], self.router.serving(spec.app))
                url = ""
                remaining = iter(steps)
                for step in remaining:
                    if step.action is Action.START:
                        new.append(self._start(spec))
                        yield DeployProgress(step.phase, f"started {new[-1].name}",
                                             container_id=new[-1].id)
                    elif step.action is Action.GATE:
                        yield from self._gate(spec, new[step.replica], token)
                        gated.add(new[step.replica].id)
                    elif step.action is Action.SWITCH:
                        if not new or any(r.id not in gated for r in new):
                            raise _Failed(Phase.SWITCH, Failure.INTERNAL,
                                          "refusing to route a container that did not pass its gate")
                        if not token.protect():
                            raise _Failed(Phase.SWITCH, Failure.CANCELLED, "cancelled")
                        try:
                            url = self.router.switch(
                                spec.app, [Target(r.id, r.host_port or 0) for r in new],
                                front_door_check(spec))
                        except RouterError as exc:
                            raise _Failed(Phase.SWITCH, Failure.SWITCH, str(exc)) from exc
                        switched = True
                        names = ", ".join(r.name for r in new)
                        yield DeployProgress(step.phase, f"traffic now goes to {names} at {url}",
                                             container_id=new[0].id, url=url)
                    elif step.action is Action.DRAIN:
                        drained = self.router.drain(spec.app, spec.drain_seconds or DRAIN_SECONDS)
                        yield DeployProgress(step.phase, f"old version: {drained}",
                                             container_id=new[0].id)
                    else:
                        message = self._retire(step, records[step.container], spec)
                        if message:
                            yield DeployProgress(step.phase, message,
                                                 container_id=new[0].id if new else "")
                yield DeployProgress(Phase.DONE, f"{spec.app} serves {spec.commit_sha[:12]} at {url}",
                                     container_id=new[0].id, url=url)
            except _Failed as failed:
                if not switched:
                    self._undo(new)
                yield DeployProgress(failed.phase, f"{failed.phase.lower()} failed: {failed.error}",
                                     container_id=new[-1].id if new else "",
                                     failure=failed.failure, error=failed.error)
            except GeneratorExit:
                # The stream consumer went away (client cancelled, control plane killed): never
                # leave a half deploy. Before the switch that means undoing it; after, traffic is
                # already on the new release, so the old one is still drained, stopped and removed.
                if not switched:
                    self._undo(new)
                else:
                    self._finish_after_switch(remaining, records, spec)
                raise
            except Exception as exc:  # a bug or an unexpected engine error: still no half deploy
                if not switched:
                    self._undo(new)
                yield DeployProgress(Phase.STOP_OLD if switched else Phase.START,
                                     f"internal agent error: {exc}",
                                     container_id=new[-1].id if new else "",
                                     failure=Failure.INTERNAL, error=f"internal agent error: {exc}")

    def _finish_after_switch(self, steps, records: dict[str, ContainerRecord],
                             spec: DeploySpec) -> None:
        """The steps left after the switch (drain, stop, remove), carried out with nobody
        listening: the release is past its point of no return."""
        for step in steps:
            try:
                if step.action is Action.DRAIN:
                    self.router.drain(spec.app, spec.drain_seconds or DRAIN_SECONDS)
                elif step.container in records:
                    self._retire(step, records[step.container], spec)
            except Exception:  # best effort: reconcile at the next start removes what is left
                log.exception("finishing %s after its stream ended", spec.app)

    def _start(self, spec: DeploySpec) -> ContainerRecord:
        name = container_name(spec.app, spec.deployment_id)
        labels = {L.MANAGED: "true", L.APP: spec.app, L.DEPLOYMENT: str(spec.deployment_id),
                  L.COMMIT: spec.commit_sha}
        if self.agent_id:
            labels[L.AGENT] = self.agent_id
        try:
            # No restart policy until healthy: Docker restarting a crashing container would
            # hide its exit code and keep a broken release looping. See _gate.
            return self.engine.run(ContainerSpec(name=name, image=spec.image, port=spec.port,
                                                 env=dict(spec.env), labels=labels,
                                                 restart_policy=GATE_POLICY,
                                                 stop_signal=spec.stop_signal or "SIGTERM"))
        except EngineError as exc:
            raise _Failed(Phase.START, Failure.START, f"cannot start {name}: {exc}") from exc

    def _gate(self, spec: DeploySpec, new: ContainerRecord,
              token: CancelToken) -> Iterator[DeployProgress]:
        """Wait until healthy, then let Docker restart it from here on (crashes, host
        reboots): the restart policy is also how a restarted agent tells it passed."""
        what = ("waiting for the Docker HEALTHCHECK" if spec.health.use_docker_healthcheck
                else f"probing {new.direct_url}{spec.health_path}")
        yield DeployProgress(Phase.HEALTH, what, container_id=new.id)
        detail = self._wait_healthy(spec, new, token)
        yield DeployProgress(Phase.HEALTH, f"healthy: {detail}", container_id=new.id)
        try:
            self.engine.set_restart_policy(new.id, RESTART_POLICY)
        except EngineError as exc:
            raise _Failed(Phase.HEALTH, Failure.START,
                          f"cannot set restart policy on {new.name}: {exc}") from exc

    def _wait_healthy(self, spec: DeploySpec, new: ContainerRecord, token: CancelToken) -> str:
        """Until healthy or the deadline: the container must keep running (no exit, no OOM
        kill) and pass the HTTP probes (`healthy_threshold` in a row) or Docker's HEALTHCHECK."""
        policy = spec.health
        timeout = spec.health_timeout_seconds or HEALTH.timeout_seconds
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        streak = 0
        while True:
            try:
                state = self.engine.inspect(new.id)
            except NotOnEngine:
                raise _Failed(Phase.START, Failure.START, f"container {new.name} disappeared")
            if state.oom_killed:
                raise _Failed(Phase.START, Failure.START,
                              f"container was OOM-killed (exit code {state.exit_code}) before it "
                              "was healthy" + self._logs_suffix(new.id))
            if state.state not in ("running", "created") or state.restart_count > 0:
                raise _Failed(Phase.START, Failure.START,
                              f"container exited with code {state.exit_code} before it was healthy"
                              + self._logs_suffix(new.id))
            if not state.host_port:
                raise _Failed(Phase.START, Failure.START,
                              f"{new.name} has no port published for {spec.port}/tcp")
            new.host_port = state.host_port
            if policy.use_docker_healthcheck:
                if state.state == "running" and not state.health_status:
                    raise _Failed(Phase.HEALTH, Failure.HEALTH,
                                  "docker health check requested but the image has no HEALTHCHECK")
                if state.health_status == "healthy":
                    return "Docker HEALTHCHECK reports healthy"
                if state.health_status == "unhealthy":
                    raise _Failed(Phase.HEALTH, Failure.HEALTH,
                                  "Docker HEALTHCHECK reports unhealthy; last check output: "
                                  f"{state.health_output or '(none)'}" + self._logs_suffix(new.id))
                last = f"Docker HEALTHCHECK status {state.health_status or 'unknown'}"
                if state.health_output:
                    last += f" ({state.health_output[:200]})"
            else:
                probe_timeout = policy.probe_timeout_ms / 1000
                result = probe(new.direct_url, spec.health_path or HEALTH.path,
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
                raise _Failed(Phase.HEALTH, Failure.HEALTH,
                              f"not healthy within {timeout}s; last: {last}"
                              + self._logs_suffix(new.id))
            if token.wait(min(policy.interval_ms / 1000, max(0.0, deadline - time.monotonic()))
                          or POLL_INTERVAL / 10):
                raise _Failed(Phase.HEALTH, Failure.CANCELLED, "cancelled")

    def _logs_suffix(self, container_id: str) -> str:
        lines = self.engine.logs_tail(container_id, LOG_LINES)
        return ("\nlast log lines:\n" + "\n".join(lines)) if lines else "\n(no log output)"

    def _retire(self, step: planner.Step, record: ContainerRecord, spec: DeploySpec) -> str:
        """STOP or REMOVE of an existing container; returns a message for people, or ""."""
        try:
            if step.action is Action.STOP:
                self.engine.stop(record.id, timeout=spec.stop_grace_seconds or STOP_GRACE_SECONDS)
                return ""
            self.engine.remove(record.id, force=True)
        except EngineError as exc:
            return f"could not {step.action} {record.name}: {exc}"
        if step.phase is Phase.START:
            return f"removed {record.name}, left by an earlier attempt of this deployment"
        return f"stopped and removed {record.name}"

    def _undo(self, new: list[ContainerRecord]) -> None:
        for step in planner.undo([r.id for r in new]):
            self._discard(step.container)

    def _discard(self, container_id: str) -> None:
        try:
            self.engine.remove(container_id, force=True)
        except EngineError:
            pass

    # ---- restart --------------------------------------------------------------------------
    def reconcile(self) -> None:
        """After a restart: settle which containers serve each app and drop leftovers
        (`planner.plan_reconcile`): only containers that passed their gate stay routed, and an
        app left with none loses its route (the front door then answers 404, never a container
        that failed its gate). The routed ones are switched to again so the router holds their
        current ports (a container made before ports were pinned got a new one on restart)."""
        by_app: dict[str, list[ContainerRecord]] = {}
        for record in self.engine.list():
            by_app.setdefault(record.app, []).append(record)
        for app in set(by_app) | set(self.router.apps()):
            with self._locks.hold(app):
                records = {r.id: r for r in by_app.get(app, [])}
                plan = planner.plan_reconcile([observe(r) for r in records.values()],
                                              self.router.serving(app))
                if plan.forget_route:
                    self.router.remove(app)
                elif plan.route:
                    try:
                        self.router.switch(app, [Target(cid, records[cid].host_port or 0)
                                                 for cid in plan.route])
                        self.router.drain(app, 0)  # a stale route's slot: out at once
                    except RouterError:
                        pass  # keeps the persisted route; the next deploy fixes it
                for container_id in plan.remove:
                    self._discard(container_id)
