"""Writes a running deployment's progress: phases with timings, log lines, progress, the outcome.

Invariants:
- Every write is fenced by the recorder's claim: the claim check and the write commit in one
  transaction, so an attempt whose job another attempt took over writes nothing (`StaleClaim`).
- Events are stored first, then watchers are woken: what a watcher sees is always what is stored.
- Build lines and progress are buffered and stored in batches (one transaction per batch, not per
  line): a batch is written when it holds BATCH_EVENTS, FLUSH_SECONDS after its first line, and
  always before a phase change, a field update or the outcome, so stored order is emitted order.
- A deployment's stored log is capped (MAX_LOG_LINES lines or MAX_LOG_CHARS characters): one
  "log truncated" line is stored, later lines are counted, not stored; the build itself goes on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from services.agents.port import RUN_SETTINGS
from services.apps import placement
from services.apps import repository as apps_repo
from services.core.states import EventKind, Phase, State, Trigger
from services.db.models import App, Deployment, utcnow
from services.db.session import Database
from services.deployments import repository as repo
from services.deployments.events import EventLog
from services.jobs.queue import Claim, JobQueue, StaleClaim
from services.notifications import outbox


log = logging.getLogger(__name__)

# At most this many buffered events are stored per write transaction.
BATCH_EVENTS = 256
# The longest a buffered line waits to be stored (and so to reach watchers): well inside the
# 100 ms a build line may take to reach a watcher (scripts/bench/deploy.py), while a chatty build
# still writes at most ~50 transactions a second instead of one per line.
FLUSH_SECONDS = 0.02
# A deployment's stored log ends at whichever comes first.
MAX_LOG_LINES = 20_000
MAX_LOG_CHARS = 8 * 1024 * 1024


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
    # The app's release command (argv) and how many successful releases keep their image.
    release_command: list = field(default_factory=list)
    retain_releases: int = 5
    extra: dict = field(default_factory=dict)
    # Trigger.CONFIG: the source release's image with the app's current settings (config_release).
    trigger: str = ""
    # The app's servers in rollout order (servers[0] == server_name, the one that builds) and how
    # many replicas run over them (services.apps.placement.spread).
    servers: tuple[str, ...] = ()
    replicas: int = 1
    # Where the release serving when this deployment began runs: the servers its deployment
    # SUCCEEDED on (placement.succeeded_servers); () when nothing serves yet.
    previous_servers: tuple[str, ...] = ()
    # That serving release and its deployment (None: nothing serves yet): the servers a failed
    # rollout already reached go back to it (services.deployments.rollout).
    previous_release: dict | None = None
    previous_id: int | None = None


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
        # Buffered events (kind, phase, message, fields), oldest first; guarded by _lock, which
        # the flush timer's thread takes too.
        self._pending: list[tuple[EventKind, Phase, str, dict]] = []
        self._lock = threading.RLock()
        self._timer: threading.Timer | None = None
        self._log_lines = 0
        self._log_chars = 0
        self._truncated = False
        self.lines_not_stored = 0

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
            self.queue.fence(s, self.claim)
            app: App = dep.app
            if state == State.QUEUED:
                dep.state = str(State.RUNNING)
                dep.started_at = self.clock()
                self.events.append(s, self.id, EventKind.STATE, Phase.QUEUED, "started", state=State.RUNNING)
            source = repo.get(s, dep.source_deployment_id) if dep.source_deployment_id else None
            if dep.trigger == Trigger.CONFIG:
                source = self._config_source(s, dep, app, source)
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
                release_command=list(app.release_command or []), retain_releases=app.retain_releases,
                trigger=dep.trigger,
                servers=tuple(apps_repo.app_server_names(s, app.id)) or (app.server.name,),
                replicas=app.replicas or 1,
                previous_servers=self._previous_servers(s, app),
            )
            serving = repo.get(s, app.current_deployment_id) if app.current_deployment_id else None
            if serving is not None and serving.id != dep.id and serving.release:
                snap.previous_release, snap.previous_id = dict(serving.release), serving.id
            self.phase_now = Phase(dep.phase)
            # An earlier attempt's lines count towards the cap.
            self._log_lines, self._log_chars = repo.log_totals(s, self.id)
            self._truncated = self._log_lines >= MAX_LOG_LINES or self._log_chars >= MAX_LOG_CHARS
        self.events.notifier.notify(self.id)
        return snap

    @staticmethod
    def _config_source(s, dep, app, source):
        """A CONFIG release runs the image serving when it starts: a deploy that finished while
        it was queued moved that on, and running the older image would undo it."""
        serving = repo.get(s, app.current_deployment_id) if app.current_deployment_id else None
        if serving is not None and serving.id != dep.source_deployment_id and serving.release \
                and serving.state == State.SUCCEEDED:
            dep.source_deployment_id = serving.id
            return serving
        return source

    @staticmethod
    def _previous_servers(s, app: App) -> tuple[str, ...]:
        serving = repo.get(s, app.current_deployment_id) if app.current_deployment_id else None
        if serving is None:
            return ()
        return placement.succeeded_servers(serving.server_outcomes, app.server.name)

    def cancel_requested(self) -> bool:
        with self.db.read() as s:
            dep = repo.get(s, self.id)
            return bool(dep and dep.cancel_requested)

    def phase(self, phase: Phase, message: str = "") -> None:
        now = self.clock()
        with self._write() as s:
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

    def note_unserved(self, seconds: float) -> None:
        """An exclusive-volumes deploy's time without a serving container, kept on its last
        SWITCH timing (the window ends with the switch): the deployment's timings are where
        it is stored, read back as Deployment.unserved_seconds (services.api.converters)."""
        with self._write() as s:
            dep = repo.get(s, self.id)
            timings = [dict(t) for t in dep.phase_timings or []]
            switches = [t for t in timings if t.get("phase") == str(Phase.SWITCH)]
            if switches:
                switches[-1]["unserved_seconds"] = round(seconds, 3)
                dep.phase_timings = timings

    def log(self, message: str, phase: Phase | None = None) -> None:
        """Buffers a line (stored within FLUSH_SECONDS, or at once when the batch is full); past
        the cap it is only counted."""
        with self._lock:
            if self._truncated:
                self.lines_not_stored += 1
                return
            if self._log_lines >= MAX_LOG_LINES or self._log_chars + len(message) > MAX_LOG_CHARS:
                self._truncated = True
                self.lines_not_stored += 1
                message = (f"log truncated: this deployment stored {self._log_lines} lines "
                           f"({self._log_chars} characters); later lines are not stored")
            self._log_lines += 1
            self._log_chars += len(message)
            self._buffer(EventKind.LOG, phase or self.phase_now, message, {})

    def progress(self, current: int, total: int, step: str = "") -> None:
        with self._lock:
            self._buffer(EventKind.PROGRESS, self.phase_now, step or f"step {current}/{total}",
                         {"step_current": current, "step_total": total})

    def flush(self) -> None:
        """Stores the buffered events now (fenced), then wakes watchers."""
        with self._write():
            pass

    def record_server_outcomes(self, outcomes: list[dict]) -> None:
        """Stores each server's part of the rollout so far (the whole list, replacing the last one):
        [{"server", "state", "phase", "reason", "replicas"}, ...], states from placement.OUTCOME_STATES.
        Fenced like every write; ValueError, writing nothing, on a malformed entry."""
        stored = placement.normalized(outcomes)
        with self._write() as s:
            repo.get(s, self.id).server_outcomes = stored

    def update(self, **fields) -> None:
        """Sets deployment columns (commit_sha, image, image_id, image_digest, ...), fenced."""
        with self._write() as s:
            dep = repo.get(s, self.id)
            for key, value in fields.items():
                setattr(dep, key, value)

    def finish(self, state: State, *, reason: str = "", failure_phase: Phase | None = None,
               app_url: str | None = None, **fields) -> None:
        """Ends the deployment: buffered lines, final fields, closed timings, the job done, the
        terminal event last. Raises StaleClaim, writing nothing, when another attempt holds the job now."""
        now = self.clock()
        with self._write(finishing=True) as s:
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
        log.info("finished %s%s%s", state, f" at {finished.failure_phase}: {reason}" if state != State.SUCCEEDED else "",
                 f" ({self.lines_not_stored} log lines past the cap not stored)" if self.lines_not_stored else "")
        self.on_finish(finished)

    def _buffer(self, kind: EventKind, phase: Phase, message: str, fields: dict) -> None:
        self._pending.append((kind, phase, message, fields))
        if len(self._pending) >= BATCH_EVENTS:
            self.flush()
        elif self._timer is None:
            self._timer = threading.Timer(FLUSH_SECONDS, self._flush_on_timer)
            self._timer.daemon = True
            self._timer.start()

    def _flush_on_timer(self) -> None:
        try:
            self.flush()
        except StaleClaim as stale:
            log.warning("%s: its buffered lines are dropped", stale)
        except Exception:
            log.exception("storing buffered lines of deployment %s failed", self.id)

    @contextmanager
    def _write(self, *, finishing: bool = False) -> Iterator[Session]:
        """One fenced transaction that first stores the buffered events, then the caller's writes;
        watchers are woken after it commits. On StaleClaim nothing is written (the buffer is dropped:
        its lines belong to an attempt that no longer owns the deployment)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            pending, self._pending = self._pending, []
            try:
                with self.db.session() as s:
                    if finishing:
                        self.queue.finish(s, self.claim)
                    else:
                        self.queue.fence(s, self.claim)
                    if pending:
                        seq = repo.last_seq(s, self.id)
                        for kind, phase, message, kw in pending:
                            seq += 1
                            self.events.append(s, self.id, kind, phase, message, seq=seq, **kw)
                    yield s
            except StaleClaim:
                raise
            except BaseException:
                self._pending = pending + self._pending  # kept for the next write to retry
                raise
        self.events.notifier.notify(self.id)
