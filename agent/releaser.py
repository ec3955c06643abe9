"""Carries a release out: the planner's steps against the Docker engine and the router.

What to do is decided in `agent.planner` (pure); this module only runs the steps, turns what
happens into progress for the Deploy stream, and keeps the one guarantee that needs the
engine: anything that fails or is cancelled before the switch removes the new containers
only, so the old ones keep serving.
"""

from __future__ import annotations

import enum
import logging
import os
import secrets
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

from agent import labels as L
from agent import planner
from agent import volumes as app_volumes
from agent.docker_engine import (ContainerRecord, ContainerSpec, DockerEngine, EngineError,
                                 NotOnEngine)
from agent.health import HealthPolicy, probe
from agent.limits import oom_reason
from agent.locks import KeyedLocks
from agent.image_pull import PullFailed, pull_if_missing
from agent.registry_images import RegistryLogin
from agent.one_off import KIND_RELEASE, Exited, OneOffs, OneOffSpec, Output
from agent.operations import CancelToken
from agent.planner import Action, Observed, Release
from agent.route_policy import ANSWERS_HTTP
from agent.router import Check, Health, Router, RouterError, Target
from common import runtime_rules
from common.phases import Phase
from common.rules import DRAIN_FOLLOW_SECONDS, DRAIN_SECONDS, HEALTH, STOP_GRACE_SECONDS

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
    RELEASE_COMMAND = "release_command"


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
    # How the container runs (common.runtime_rules): limits (0: none), volumes as (name, path),
    # whether the old container stops before the new one starts, the release command run before
    # START (empty: none), and how many successful releases keep their image.
    memory_bytes: int = 0
    cpu_millis: int = 0
    volumes: tuple[tuple[str, str], ...] = ()
    exclusive_volumes: bool = False
    release_command: tuple[str, ...] = ()
    retain_releases: int = runtime_rules.DEFAULT_RETAIN_RELEASES
    # The registry a digest-ref image is pulled from when it is not on the engine (agent.image_pull).
    pull_login: RegistryLogin | None = None


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
    # On DONE of an exclusive-volumes deploy: how long the app served nothing (old stopped
    # before the new one started, until the switch).
    unserved_seconds: float = 0.0


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


class Retirement:
    """The old release's way out after a switch, on a thread of its own: drain (until its open
    connections close, or its drain deadline), then stop and remove its containers.

    It is not the deploy's: a deploy follows it for a while (DRAIN_FOLLOW_SECONDS), reporting the
    open connections, then finishes while the old release keeps its WebSockets and event streams
    up to hours; a next deploy of the app goes ahead meanwhile (its slot is kept, see
    route_policy.switch, and its containers are left out of the next plan)."""

    REPORT_EVERY = 1.0  # at most one "N open" line a second while connections close one by one

    def __init__(self, releaser: "Releaser", spec: "DeploySpec", steps: list[planner.Step],
                 records: dict[str, ContainerRecord]) -> None:
        self.releaser, self.spec, self.steps, self.records = releaser, spec, steps, records
        self.names = ", ".join(records[s.container].name for s in steps
                               if s.action is Action.REMOVE and s.container in records) or "none"
        self.ids = {s.container for s in steps}
        self.open = -1
        self.done = False
        self.messages: list[str] = []
        self._changed = threading.Condition()

    def start(self) -> "Retirement":
        self.releaser._retiring(self.spec.app, self.ids, add=True)
        threading.Thread(target=self._run, name=f"retire-{self.spec.app}", daemon=True).start()
        return self

    def _count(self, open_now: int) -> None:
        with self._changed:
            self.open = open_now
            self._changed.notify_all()

    def _say(self, message: str) -> None:
        with self._changed:
            self.messages.append(message)
            self._changed.notify_all()

    def _run(self) -> None:
        spec = self.spec
        try:
            try:
                drained = self.releaser.router.drain(spec.app, spec.drain_seconds or DRAIN_SECONDS,
                                                     progress=self._count)
                self._say(f"old version: {drained}")
            except Exception as exc:  # best effort: the old one is still stopped below
                log.exception("draining %s", spec.app)
                self._say(f"old version: drain failed ({exc}); stopping it anyway")
            for step in self.steps:
                if step.container in self.records:
                    message = self.releaser._retire(step, self.records[step.container], spec)
                    if message:
                        self._say(message)
        except Exception:  # never lost silently; reconcile at the next start removes what is left
            log.exception("retiring the old release of %s", spec.app)
        finally:
            self.releaser._retiring(spec.app, self.ids, add=False)
            with self._changed:
                self.done = True
                self._changed.notify_all()

    def follow(self, seconds: float) -> Iterator[str]:
        """Lines for the deploy's stream: the open connections as they change (at most one line
        a second, the first and the last always), then what the retirement did; until it is
        done or `seconds` are over."""
        until = time.monotonic() + seconds
        told, told_at, said = -1, 0.0, 0
        while True:
            with self._changed:
                self._changed.wait_for(
                    lambda: self.done or len(self.messages) > said or self.open not in (-1, told),
                    timeout=max(0.0, until - time.monotonic()))
                open_now, done, messages = self.open, self.done, self.messages[said:]
            now = time.monotonic()
            if open_now not in (-1, told):
                if told < 0 or open_now == 0 or done or now - told_at >= self.REPORT_EVERY:
                    yield f"draining {self.names}: {open_now} connection(s) open"
                    told, told_at = open_now, now
                elif now < until:  # a burst of closes: one line for it, a moment later
                    with self._changed:
                        self._changed.wait_for(lambda: self.done, timeout=min(
                            self.REPORT_EVERY - (now - told_at), until - now))
                    continue
            for message in messages:
                yield message
            said += len(messages)
            if done or time.monotonic() >= until:
                return


class _Failed(Exception):
    def __init__(self, phase: Phase, failure: Failure, error: str) -> None:
        super().__init__(error)
        self.phase, self.failure, self.error = phase, failure, error


class Releaser:
    """Runs deploys (one at a time per app) and reconciles state after an agent restart."""

    def __init__(self, engine: DockerEngine, router: Router, agent_id: str = "",
                 archive=None) -> None:
        self.engine = engine
        self.router = router
        self.agent_id = agent_id
        # agent.log_archive.LogArchive (or None): a container's output is copied before removal.
        self.archive = archive
        self._locks = KeyedLocks()
        # Runs the release command (agent.one_off) before START.
        self.one_offs = OneOffs(engine, agent_id=agent_id)
        # agent.pruner.Pruner (or None): told of each release that takes traffic and each
        # successful deploy, so retention knows the order releases served in.
        self.retention = None
        # agent.registry_images.RegistryImages (or None): pulls releases built on other servers.
        self.registry_images = None
        # How long a deploy's stream follows the old release's drain (TUGBOAT_DRAIN_FOLLOW_SECONDS).
        self.drain_follow_seconds = float(os.environ.get("TUGBOAT_DRAIN_FOLLOW_SECONDS")
                                          or DRAIN_FOLLOW_SECONDS)
        self._retiring_lock = threading.Condition()
        self._retiring_ids: dict[str, set[str]] = {}  # app -> containers retired in the background

    def _retiring(self, app: str, ids: set[str], *, add: bool) -> set[str]:
        """The app's containers a background Retirement owns (add or drop `ids`); a deploy
        leaves them out of its plan."""
        with self._retiring_lock:
            held = self._retiring_ids.setdefault(app, set())
            if add:
                held |= ids
            else:
                held -= ids
                self._retiring_lock.notify_all()
            return set(held)

    def retiring(self, app: str) -> set[str]:
        """The app's containers a background Retirement still drains or stops."""
        with self._retiring_lock:
            return set(self._retiring_ids.get(app, ()))

    @contextmanager
    def unless_deploying(self, app: str, wait: float = 0.0) -> Iterator[bool]:
        """Hold the app's deploy lock unless a deploy holds it (waiting up to `wait` s); yields
        whether it is held. Prunes run under it: never while the app deploys."""
        lock = self._locks.get(app)
        held = lock.acquire(timeout=wait) if wait > 0 else lock.acquire(blocking=False)
        try:
            yield held
        finally:
            if held:
                lock.release()

    def wait_retired(self, app: str, timeout: float) -> bool:
        """Wait until no background Retirement of the app runs (tests, shutdown); False on timeout."""
        with self._retiring_lock:
            return self._retiring_lock.wait_for(lambda: not self._retiring_ids.get(app), timeout)

    # ---- deploy ---------------------------------------------------------------------------
    def deploy(self, spec: DeploySpec, token: CancelToken) -> Iterator[DeployProgress]:
        """Yield progress; the last event is DONE or carries a failure."""
        with self._locks.hold(spec.app):
            new: list[ContainerRecord] = []
            gated: set[str] = set()  # new containers that passed their gate
            switched = False
            retirement: Retirement | None = None
            # Exclusive volumes: the old containers stopped before the new start, and since when
            # the app serves nothing (monotonic), for the "served nothing for" line.
            stopped_first: list[ContainerRecord] = []
            unserved_since: float | None = None
            unserved = 0.0
            try:
                if token.cancelled:
                    raise _Failed(Phase.START, Failure.CANCELLED, "cancelled")
                try:  # built on another server: its bytes, by digest, before anything runs it
                    for line in pull_if_missing(self, spec):
                        yield DeployProgress(Phase.START, line)
                except PullFailed as exc:
                    raise _Failed(Phase.START, Failure.START, str(exc)) from exc
                if spec.release_command:
                    yield from self._release_command(spec, token)
                yield DeployProgress(Phase.START, f"starting {spec.app} from {spec.image}")
                try:
                    # May reload the proxy (new app, changed domains): before anything switches.
                    self.router.ensure_app(spec.app, spec.domains, front_door_check(spec))
                except RouterError as exc:
                    raise _Failed(Phase.START, Failure.SWITCH, f"cannot route {spec.app}: {exc}") from exc
                retiring = self._retiring(spec.app, set(), add=True)
                records = {r.id: r for r in self.engine.list(spec.app) if r.id not in retiring}
                steps = planner.plan_release(
                    Release(spec.deployment_id, spec.replicas),
                    [observe(r) for r in records.values()], self.router.serving(spec.app),
                    exclusive=spec.exclusive_volumes)
                url = ""
                remaining = iter(steps)
                for step in remaining:
                    if step.action is Action.STOP_FIRST:
                        old = records[step.container]
                        if unserved_since is None:
                            unserved_since = time.monotonic()
                        stopped_first.append(old)
                        yield DeployProgress(step.phase, f"stopping {old.name} before the new release "
                                             "starts (exclusive volumes): the app serves nothing "
                                             "until the switch", container_id=old.id)
                        self._stop_first(spec, old)
                    elif step.action is Action.START:
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
                        # After the event, not between the switch and it: the caller learns of
                        # the switch the moment it happens (the release history is a file write).
                        if self.retention is not None:
                            self.retention.released(spec)
                        if unserved_since is not None:
                            unserved = time.monotonic() - unserved_since
                            yield DeployProgress(step.phase, f"served nothing for {unserved:.1f} s "
                                                 "(exclusive volumes: the old release stopped "
                                                 "before the new one started)",
                                                 container_id=new[0].id)
                    elif step.action is Action.DRAIN:
                        retirement = Retirement(self, spec, list(remaining), records).start()
                        for line in retirement.follow(min(spec.drain_seconds or DRAIN_SECONDS,
                                                          self.drain_follow_seconds)):
                            yield DeployProgress(step.phase, line, container_id=new[0].id)
                        if not retirement.done:
                            yield DeployProgress(
                                step.phase,
                                f"{retirement.open} connection(s) still open on {retirement.names}: it "
                                "keeps them until they close or its drain deadline "
                                f"({spec.drain_seconds or DRAIN_SECONDS}s after the switch), then it "
                                "is stopped and removed (in the background)", container_id=new[0].id)
                    else:
                        message = self._retire(step, records[step.container], spec)
                        if message:
                            yield DeployProgress(step.phase, message,
                                                 container_id=new[0].id if new else "")
                if self.retention is not None:
                    self.retention.after_deploy(spec.app)  # runs once this deploy lets go of the app
                yield DeployProgress(Phase.DONE, f"{spec.app} serves {spec.commit_sha[:12]} at {url}",
                                     container_id=new[0].id, url=url,
                                     unserved_seconds=round(unserved, 3))
            except _Failed as failed:
                if not switched:
                    self._undo(new)
                    yield from self._bring_back(spec, stopped_first, unserved_since, failed.phase)
                yield DeployProgress(failed.phase, f"{failed.phase.lower()} failed: {failed.error}",
                                     container_id=new[-1].id if new else "",
                                     failure=failed.failure, error=failed.error)
            except GeneratorExit:
                # The stream consumer went away (client cancelled, control plane killed): never
                # leave a half deploy. Before the switch that means undoing it; after, traffic is
                # already on the new release, so the old one is still drained, stopped and removed.
                if not switched:
                    self._undo(new)
                    for _ in self._bring_back(spec, stopped_first, unserved_since, Phase.START):
                        pass
                elif retirement is None:
                    self._finish_after_switch(remaining, records, spec)
                raise
            except Exception as exc:  # a bug or an unexpected engine error: still no half deploy
                if not switched:
                    self._undo(new)
                    yield from self._bring_back(spec, stopped_first, unserved_since, Phase.START)
                yield DeployProgress(Phase.STOP_OLD if switched else Phase.START,
                                     f"internal agent error: {exc}",
                                     container_id=new[-1].id if new else "",
                                     failure=Failure.INTERNAL, error=f"internal agent error: {exc}")

    def _finish_after_switch(self, steps, records: dict[str, ContainerRecord],
                             spec: DeploySpec) -> None:
        """The steps left after the switch (drain, stop, remove), carried out with nobody
        listening: the release is past its point of no return. A Retirement does them in the
        background, as long as the old release's connections take."""
        Retirement(self, spec, [s for s in steps if s.action is not Action.DRAIN], records).start()

    def _release_command(self, spec: DeploySpec, token: CancelToken) -> Iterator[DeployProgress]:
        """Phase RELEASE_COMMAND: the app's release command (migrations) once, in a fresh
        container of the new image with the new release's env, limits and volumes, before any
        new container starts; each output line is an event (the deployment's log). Anything but
        exit 0 fails the deploy here, with nothing started: the old release keeps serving."""
        yield DeployProgress(Phase.RELEASE_COMMAND,
                             f"running the release command: {' '.join(spec.release_command)}")
        run = OneOffSpec(app=spec.app, run_id=f"deployment-{spec.deployment_id}", image=spec.image,
                         command=spec.release_command, env=dict(spec.env), kind=KIND_RELEASE,
                         memory_bytes=spec.memory_bytes, cpu_millis=spec.cpu_millis,
                         volumes=spec.volumes,
                         timeout_seconds=runtime_rules.RELEASE_COMMAND_TIMEOUT_SECONDS)
        exited = None
        for event in self.one_offs.run(run, token):
            if isinstance(event, Output):
                yield DeployProgress(Phase.RELEASE_COMMAND, event.line)
            elif isinstance(event, Exited):
                exited = event
        if exited is None or exited.cancelled or token.cancelled:
            raise _Failed(Phase.RELEASE_COMMAND, Failure.CANCELLED, "cancelled")
        if not exited.ok:
            raise _Failed(Phase.RELEASE_COMMAND, Failure.RELEASE_COMMAND,
                          f"release command {exited.reason(run.timeout_seconds)}")
        yield DeployProgress(Phase.RELEASE_COMMAND, "release command exited with status 0")

    def _start(self, spec: DeploySpec) -> ContainerRecord:
        name = container_name(spec.app, spec.deployment_id)
        labels = {L.MANAGED: "true", L.APP: spec.app, L.DEPLOYMENT: str(spec.deployment_id),
                  L.COMMIT: spec.commit_sha}
        if self.agent_id:
            labels[L.AGENT] = self.agent_id
        try:
            # The app's named volumes, made on first use and checked to be the app's own.
            mounts = app_volumes.ensure(self.engine, spec.app, spec.volumes, self.agent_id)
            # No restart policy until healthy: Docker restarting a crashing container would
            # hide its exit code and keep a broken release looping. See _gate.
            return self.engine.run(ContainerSpec(name=name, image=spec.image, port=spec.port,
                                                 env=dict(spec.env), labels=labels,
                                                 restart_policy=GATE_POLICY,
                                                 stop_signal=spec.stop_signal or "SIGTERM",
                                                 volumes=mounts, memory_bytes=spec.memory_bytes,
                                                 cpu_millis=spec.cpu_millis))
        except EngineError as exc:
            raise _Failed(Phase.START, Failure.START, f"cannot start {name}: {exc}") from exc

    def _stop_first(self, spec: DeploySpec, old: ContainerRecord) -> None:
        """Exclusive volumes: stop an old container before any new one starts (the caller has
        listed it first, so a failure here still starts it again)."""
        try:
            self.engine.stop(old.id, timeout=spec.stop_grace_seconds or STOP_GRACE_SECONDS)
        except EngineError as exc:
            raise _Failed(Phase.START, Failure.START, f"cannot stop {old.name} before the new "
                          f"release starts (exclusive volumes): {exc}") from exc

    def _bring_back(self, spec: DeploySpec, stopped: list[ContainerRecord],
                    unserved_since: float | None, phase: Phase) -> Iterator[DeployProgress]:
        """After a failure before the switch of an exclusive release (the new containers are
        gone): start the old ones it stopped first and wait until they serve, so the old
        release keeps serving as after any failed deploy. The route never left them."""
        for step in planner.undo((), [r.id for r in stopped]):
            old = next(r for r in stopped if r.id == step.container)
            try:
                self.engine.start(old.id)
                problem = self._wait_serving(spec, old)
            except EngineError as exc:
                problem = f"it did not start: {exc}"
            yield DeployProgress(phase, f"started the old release's {old.name} again: "
                                 + (problem or "it serves"), container_id=old.id)
        if stopped and unserved_since is not None:
            yield DeployProgress(phase, f"served nothing for {time.monotonic() - unserved_since:.1f} s "
                                 "(exclusive volumes: until the old release served again)")

    def _wait_serving(self, spec: DeploySpec, old: ContainerRecord) -> str:
        """Until the restarted old container answers HTTP and the router does not hold it
        down (its checks rise again); "" then, else why not by the health timeout."""
        deadline = time.monotonic() + (spec.health_timeout_seconds or HEALTH.timeout_seconds)
        last = "no answer yet"
        while True:
            state = self.engine.inspect(old.id)
            if state.running and state.host_port:
                result = probe(state.direct_url, spec.health_path or HEALTH.path, timeout=1.0,
                               status_min=ANSWERS_HTTP.status_min, status_max=ANSWERS_HTTP.status_max)
                seen = self.router.health(spec.app).get(old.id)
                if result.ok and (seen is None or seen.health is not Health.UNHEALTHY):
                    return ""
                last = result.detail if not result.ok else f"the router holds it down: {seen.detail}"
            elif not state.running:
                last = f"it is {state.state} (exit code {state.exit_code})"
            if time.monotonic() >= deadline:
                return f"not serving within {spec.health_timeout_seconds or HEALTH.timeout_seconds}s; last: {last}"
            time.sleep(spec.health.interval_ms / 1000 or POLL_INTERVAL)

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
            if state.oom_killed:  # before the exit check: a kill for memory says which limit
                raise _Failed(Phase.START, Failure.START,
                              f"{oom_reason(spec.memory_bytes)} (exit code {state.exit_code}) "
                              "before it was healthy" + self._logs_suffix(new.id))
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
            self.keep_logs(record.id)
            self.engine.remove(record.id, force=True)
        except EngineError as exc:
            return f"could not {step.action} {record.name}: {exc}"
        if step.phase is Phase.START:
            return f"removed {record.name}, left by an earlier attempt of this deployment"
        return f"stopped and removed {record.name}"

    def _undo(self, new: list[ContainerRecord]) -> None:
        for step in planner.undo([r.id for r in new]):
            self._discard(step.container)

    def keep_logs(self, container_id: str) -> None:
        """Copies a container's output into the log archive before it is removed (the pruner too)."""
        if self.archive is not None:
            self.archive.keep(container_id)  # never raises: the removal goes on

    def _discard(self, container_id: str) -> None:
        try:
            self.keep_logs(container_id)
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
                serving = self.router.serving(app)
                # As many as were routed: a release of N replicas keeps all N after a restart.
                plan = planner.plan_reconcile([observe(r) for r in records.values()], serving,
                                              replicas=max(1, len(set(serving) & set(records))))
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
