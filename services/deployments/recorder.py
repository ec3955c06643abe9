"""Writes a running deployment's progress: phases with timings, log lines, progress, the outcome.

Each call is its own short transaction followed by a watcher wake-up, so what a watcher sees is
always what is stored. The recorder writes for one claim of the deployment's job: the outcome is
committed together with that claim's end, so an attempt that lost its claim cannot finish it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from services.agents.port import RUN_SETTINGS
from services.core.states import EventKind, Phase, State
from services.db.models import App, Deployment, utcnow
from services.db.session import Database
from services.deployments import repository as repo
from services.deployments.events import EventLog
from services.jobs.queue import Claim, JobQueue
from services.notifications import outbox


log = logging.getLogger(__name__)


@dataclass
class DeploymentSnapshot:
    """What the pipeline needs to know about a deployment and its app, read once at the start."""

    id: int
    app: str
    app_id: int
    repo_url: str
    branch: str
    rebuild: bool
    requested_commit_sha: str
    commit_sha: str
    image: str
    image_id: str
    dockerfile: str
    context_dir: str
    server_name: str
    build_timeout_seconds: int
    cancel_requested: bool
    # The app's current RUN_SETTINGS (port, health check, env, stop and drain settings).
    run: dict
    source_release: dict | None = None
    source_id: int | None = None
    source_commit_message: str = ""
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class FinishedDeployment:
    """What observers (metrics) learn when a deployment ends."""

    app: str
    state: str
    failure_phase: str
    build_seconds: float
    build_skipped: bool
    deploy_seconds: float


def _copy(value):
    """Detached copies of JSON column values (dicts, lists) so the snapshot owns its data."""
    return type(value)(value) if isinstance(value, (dict, list)) else value


class Recorder:
    def __init__(self, db: Database, events: EventLog, queue: JobQueue, claim: Claim,
                 on_finish=lambda finished: None, *, clock: Callable[[], datetime] = utcnow):
        # Called after the outcome is committed (metrics, waking the notification sender).
        self.on_finish = on_finish
        self.db = db
        self.events = events
        self.queue = queue
        self.claim = claim
        self.id = claim.deployment_id
        self.clock = clock
        self.phase_now = Phase.QUEUED
        self.phase_started: dict[Phase, datetime] = {}

    @property
    def resuming(self) -> bool:
        """A later attempt: an earlier one was interrupted (control-plane restart, expired lease)."""
        return self.claim.attempt > 1

    def begin(self) -> DeploymentSnapshot | None:
        """QUEUED -> RUNNING (or picks up a RUNNING one after a restart). None: nothing to do."""
        with self.db.session() as s:
            dep = repo.get(s, self.id)
            if dep is None:
                return None
            state = State(dep.state)
            if state.terminal or (state == State.RUNNING and not self.resuming):
                self.queue.finish(s, self.claim)
                return None
            app: App = dep.app
            if state == State.QUEUED:
                dep.state = str(State.RUNNING)
                dep.started_at = self.clock()
                self.events.append(s, self.id, EventKind.STATE, Phase.QUEUED, "started", state=State.RUNNING)
            source = repo.get(s, dep.source_deployment_id) if dep.source_deployment_id else None
            snap = DeploymentSnapshot(
                id=dep.id, app=app.name, app_id=app.id, repo_url=app.repo_url, branch=app.branch,
                rebuild=dep.rebuild, requested_commit_sha=dep.requested_commit_sha, commit_sha=dep.commit_sha,
                image=dep.image, image_id=dep.image_id, dockerfile=app.dockerfile, context_dir=app.context_dir,
                server_name=app.server.name, build_timeout_seconds=app.build_timeout_seconds,
                cancel_requested=dep.cancel_requested,
                run={key: _copy(getattr(app, key)) for key in RUN_SETTINGS},
                source_release=dict(source.release) if source is not None and source.release else None,
                source_id=source.id if source is not None else None,
                source_commit_message=source.commit_message if source is not None else "",
            )
            self.phase_now = Phase(dep.phase)
        self.events.notifier.notify(self.id)
        return snap

    def cancel_requested(self) -> bool:
        with self.db.read() as s:
            dep = repo.get(s, self.id)
            return bool(dep and dep.cancel_requested)

    def phase(self, phase: Phase, message: str = "") -> None:
        now = self.clock()
        with self.db.session() as s:
            dep = repo.get(s, self.id)
            timings = [dict(t) for t in dep.phase_timings or []]
            for t in timings:
                if t.get("end") is None:
                    t["end"] = now.isoformat()
            if phase != Phase.DONE:
                timings.append({"phase": str(phase), "start": now.isoformat(), "end": None})
            dep.phase_timings = timings
            dep.phase = str(phase)
            self.events.append(s, self.id, EventKind.PHASE, phase, message or phase.lower().replace("_", " "))
        self.phase_now = phase
        self.phase_started[phase] = now
        log.info("phase %s%s", phase, f": {message}" if message else "")
        self.events.notifier.notify(self.id)

    def log(self, message: str, phase: Phase | None = None) -> None:
        self.events.emit(self.id, EventKind.LOG, phase or self.phase_now, message)

    def progress(self, current: int, total: int, step: str = "") -> None:
        self.events.emit(self.id, EventKind.PROGRESS, self.phase_now, step or f"step {current}/{total}",
                         step_current=current, step_total=total)

    def update(self, **fields) -> None:
        with self.db.session() as s:
            dep = repo.get(s, self.id)
            for key, value in fields.items():
                setattr(dep, key, value)

    def finish(self, state: State, *, reason: str = "", failure_phase: Phase | None = None,
               app_url: str | None = None, **fields) -> None:
        """Ends the deployment: final fields, closed timings, the job done, the terminal event last.
        Raises StaleClaim, writing nothing, when another attempt holds the job now."""
        now = self.clock()
        with self.db.session() as s:
            self.queue.finish(s, self.claim)
            dep: Deployment = repo.get(s, self.id)
            for key, value in fields.items():
                setattr(dep, key, value)
            timings = [dict(t) for t in dep.phase_timings or []]
            for t in timings:
                if t.get("end") is None:
                    t["end"] = now.isoformat()
            dep.phase_timings = timings
            dep.state = str(state)
            dep.finished_at = now
            if state == State.SUCCEEDED:
                dep.phase = str(Phase.DONE)
                dep.app.current_deployment_id = dep.id
                if app_url is not None:
                    dep.app.url = app_url
            else:
                dep.failure_phase = str(failure_phase or self.phase_now)
                dep.failure_reason = reason
            outbox.enqueue(s, dep, state)
            if reason:
                self.events.append(s, self.id, EventKind.LOG, self.phase_now, reason)
            summary = state.lower() if state == State.SUCCEEDED else f"{state.lower()} at {dep.failure_phase.lower()}: {reason}"
            self.events.append(s, self.id, EventKind.STATE, Phase(dep.phase), summary, state=state)
            finished = FinishedDeployment(
                app=dep.app.name, state=str(state), failure_phase=dep.failure_phase, build_seconds=dep.build_seconds,
                build_skipped=dep.build_skipped, deploy_seconds=dep.deploy_seconds)
        self.events.notifier.notify(self.id)
        log.info("finished %s%s", state, f" at {finished.failure_phase}: {reason}" if state != State.SUCCEEDED else "")
        self.on_finish(finished)
