"""One-off commands: one argv in a fresh container of a release's image, then the container goes.

Used for `serversinc run` (RunCommand) and for an app's release command (agent.releaser, before
START). The container is made from the same ContainerSpec as the app's own (env, volumes,
limits) but publishes no port and carries no managed label: deploys, reconcile and the port
picker never see it. Its labels (app, run id, kind, agent) are how it is found again.

Invariant: a one-off container never outlives its command. An attached run's is killed and
removed when the command ends, times out, or its caller goes away (the generator is closed or
its token cancelled); a detached run's by a watcher thread when the command ends, and
`resume()` gives every detached run found after an agent restart its watcher again. A run's
output (not a release command's: that is in its deployment's log) is kept on disk when it ends,
bounded. What a run did is read back with `status()`: from its container while it exists, else
from the kept output.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Union

from agent import labels as L
from agent import volumes as app_volumes
from agent.docker_engine import ContainerSpec, DockerEngine, EngineError, NotOnEngine
from agent.operations import CancelToken
from common import runtime_rules

log = logging.getLogger(__name__)

KIND_RUN = "run"
KIND_RELEASE = "release"
MAX_LINE_CHARS = 16 * 1024      # a longer line is cut (a binary dump would be one huge line)
KEPT_OUTPUT_BYTES = 1024 * 1024  # of each run's output, the last MiB is kept
KEPT_RUNS_PER_APP = 20           # kept outputs per app; the oldest go first
RUN_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


@dataclass(frozen=True)
class OneOffSpec:
    """What to run and how: the app's image, env, limits and volumes, and the argv."""

    app: str
    run_id: str
    image: str
    command: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    kind: str = KIND_RUN
    memory_bytes: int = 0
    cpu_millis: int = 0
    volumes: tuple[tuple[str, str], ...] = ()
    timeout_seconds: int = runtime_rules.RUN_TIMEOUT_SECONDS
    detach: bool = False


@dataclass(frozen=True)
class Started:
    container_id: str
    name: str


@dataclass(frozen=True)
class Output:
    line: str


@dataclass(frozen=True)
class Exited:
    exit_code: int
    timed_out: bool = False
    oom_killed: bool = False
    cancelled: bool = False
    error: str = ""  # the engine failed: the command may not have run at all

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not (self.timed_out or self.oom_killed or self.cancelled
                                             or self.error)

    def reason(self, timeout_seconds: int = 0) -> str:
        """For people: why it ended ("exited with status 3")."""
        if self.error:
            return self.error
        if self.cancelled:
            return "cancelled: its container was killed"
        if self.timed_out:
            return f"timed out after {timeout_seconds}s and was killed"
        if self.oom_killed:
            return f"was OOM-killed (exit code {self.exit_code})"
        return f"exited with status {self.exit_code}"


Event = Union[Started, Output, Exited]


@dataclass(frozen=True)
class RunStatus:
    run_id: str
    running: bool
    exit: Exited | None
    lines: tuple[str, ...]
    truncated: bool = False
    ended_at: float = 0.0  # unix seconds; 0 while it runs (or not known)
    reason: str = ""  # as told when it ended ("timed out after 60s and was killed")


class UnknownRun(Exception):
    """The agent has no container and no kept output of that run."""


class _Tail:
    """The last KEPT_OUTPUT_BYTES of output, as lines."""

    def __init__(self) -> None:
        self.lines: deque[str] = deque()
        self.size = 0
        self.truncated = False

    def add(self, line: str) -> None:
        self.lines.append(line)
        self.size += len(line) + 1
        while self.size > KEPT_OUTPUT_BYTES and self.lines:
            self.size -= len(self.lines.popleft()) + 1
            self.truncated = True


def split_lines(chunks: Iterator[bytes]) -> Iterator[str]:
    """Docker's raw output chunks as lines (no newline, no '\\r'); a last partial line too."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for raw in complete:
            yield raw.decode("utf-8", "replace").rstrip("\r")[:MAX_LINE_CHARS]
        if len(pending) > MAX_LINE_CHARS * 4:  # no newline for a long while: cut it here
            yield pending.decode("utf-8", "replace")[:MAX_LINE_CHARS]
            pending = b""
    if pending:
        yield pending.decode("utf-8", "replace").rstrip("\r")[:MAX_LINE_CHARS]


class OneOffs:
    """Runs one-off commands on the engine; keeps detached runs' output under `kept_dir`."""

    def __init__(self, engine: DockerEngine, kept_dir: Path | None = None, agent_id: str = "") -> None:
        self.engine = engine
        self.kept_dir = Path(kept_dir) if kept_dir else None
        self.agent_id = agent_id
        self._watched: set[str] = set()
        self._ended_by: dict[str, str] = {}  # container id -> why the platform ended it
        self._lock = threading.Lock()

    # ---- running --------------------------------------------------------------------------
    def run(self, spec: OneOffSpec, token: CancelToken | None = None) -> Iterator[Event]:
        """Started, the output lines, then Exited (attached). Detached: Started, then it ends
        and a watcher follows the command to its end. A failure to create or start the
        container is an Exited with `error` (nothing is left behind)."""
        token = token or CancelToken()
        try:
            container_id, name = self._create(spec)
        except EngineError as exc:
            yield Exited(-1, error=f"cannot start the command's container: {exc}")
            return
        if spec.detach:
            try:
                self.engine.start(container_id)
            except EngineError as exc:
                self.engine.remove(container_id, force=True)
                yield Exited(-1, error=f"cannot start the command's container: {exc}")
                return
            # Watched before it is announced: a caller gone right after the answer leaves none
            # unwatched.
            self._watch(spec.app, spec.run_id, container_id, spec.timeout_seconds)
            yield Started(container_id, name)
            return
        yield from self._attached(spec, container_id, name, token)

    def _create(self, spec: OneOffSpec) -> tuple[str, str]:
        name = f"{spec.app}-{spec.kind}-{spec.run_id}-{secrets.token_hex(3)}"[:120]
        labels = {L.APP: spec.app, L.RUN: spec.run_id, L.KIND: spec.kind}
        if self.agent_id:
            labels[L.AGENT] = self.agent_id
        if spec.detach:
            labels.update({L.DETACHED: "true", L.TIMEOUT: str(spec.timeout_seconds)})
        mounts = app_volumes.ensure(self.engine, spec.app, spec.volumes, self.agent_id)
        container = ContainerSpec(name=name, image=spec.image, port=0, env=dict(spec.env),
                                  labels=labels, restart_policy="no", volumes=mounts,
                                  command=tuple(spec.command), memory_bytes=spec.memory_bytes,
                                  cpu_millis=spec.cpu_millis)
        return self.engine.create_unpublished(container), name

    def _attached(self, spec: OneOffSpec, container_id: str, name: str,
                  token: CancelToken) -> Iterator[Event]:
        killed = {"timeout": False, "cancel": False}

        def kill(why: str) -> None:
            killed[why] = True
            self.engine.kill(container_id)

        timer = threading.Timer(spec.timeout_seconds, kill, args=("timeout",))
        timer.daemon = True
        unregister = token.on_cancel(lambda: kill("cancel"))
        try:
            self.engine.start(container_id)
            timer.start()
            yield Started(container_id, name)
            tail = _Tail()
            for line in split_lines(self.engine.follow_output(container_id)):
                tail.add(line)
                yield Output(line)
            code = self.engine.wait_exit(container_id)
            state = self.engine.inspect(container_id)
            exited = Exited(code, timed_out=killed["timeout"], cancelled=killed["cancel"],
                            oom_killed=state.oom_killed)
            if spec.kind == KIND_RUN:  # a release command's output is in its deployment's log
                self._keep(spec.app, spec.run_id, exited, tail, spec.timeout_seconds)
            yield exited
        except EngineError as exc:
            yield Exited(-1, timed_out=killed["timeout"], cancelled=killed["cancel"],
                         error=f"the command's container failed: {exc}")
        finally:
            # Also on GeneratorExit (the caller went away): kill, then remove. Never left behind.
            timer.cancel()
            unregister()
            self.engine.kill(container_id)
            try:
                self.engine.remove(container_id, force=True)
            except EngineError:
                log.exception("removing one-off container %s", name)

    # ---- detached runs --------------------------------------------------------------------
    def _watch(self, app: str, run_id: str, container_id: str, timeout_seconds: int) -> None:
        with self._lock:
            if container_id in self._watched:
                return
            self._watched.add(container_id)
        threading.Thread(target=self._follow_to_end, name=f"run-{app}-{run_id}", daemon=True,
                         args=(app, run_id, container_id, timeout_seconds)).start()

    def _follow_to_end(self, app: str, run_id: str, container_id: str, timeout_seconds: int) -> None:
        """Follow a detached run until it exits (killed at its deadline), keep its output and
        how it ended, then remove its container."""
        tail = _Tail()
        timed_out = threading.Event()

        def on_timeout() -> None:
            timed_out.set()
            self.engine.kill(container_id)

        try:
            started = self.engine.inspect(container_id).created.timestamp()
            remaining = max(0.0, started + timeout_seconds - time.time()) if timeout_seconds else None
            timer = threading.Timer(remaining, on_timeout) if remaining is not None else None
            if timer is not None:
                timer.daemon = True
                timer.start()
            for line in split_lines(self.engine.follow_output(container_id)):
                tail.add(line)
            code = self.engine.wait_exit(container_id)
            if timer is not None:
                timer.cancel()
            with self._lock:
                ended_by = self._ended_by.pop(container_id, "")
            oom = False if ended_by else self.engine.inspect(container_id).oom_killed
            self._keep(app, run_id, Exited(code, timed_out=timed_out.is_set(), oom_killed=oom,
                                           error=ended_by), tail, timeout_seconds)
            self.engine.remove(container_id, force=True)
        except NotOnEngine:  # removed under it (by RemoveApp, or by hand): say so
            with self._lock:
                ended_by = self._ended_by.pop(container_id, "")
            self._keep(app, run_id, Exited(-1, error=ended_by or "its container was removed "
                                           "before it ended"), tail, timeout_seconds)
        except Exception:
            log.exception("following detached run %s of %s", run_id, app)
        finally:
            with self._lock:
                self._watched.discard(container_id)

    def resume(self) -> int:
        """After an agent restart: a watcher for every detached run of this agent still on the
        engine (running, or ended while the agent was down). How many."""
        labels = [L.RUN] + ([f"{L.AGENT}={self.agent_id}"] if self.agent_id else [])
        found = 0
        for container_id in self.engine.labelled(*labels):
            try:
                record = self.engine.inspect(container_id)
            except NotOnEngine:
                continue
            if record.labels.get(L.DETACHED) != "true":
                # An attached run or a release command whose agent stopped mid-call: its caller
                # is gone (a deploy's next attempt runs its release command again).
                self.engine.remove(container_id, force=True)
                continue
            self._watch(record.app, record.labels.get(L.RUN, ""), container_id,
                        int(record.labels.get(L.TIMEOUT, "0") or 0))
            found += 1
        return found

    def remove_app(self, app: str) -> int:
        """Kill and remove every run container of the app (RemoveApp): a detached run's watcher
        then keeps what it wrote, saying its container was removed. How many."""
        removed = 0
        mine = [f"{L.AGENT}={self.agent_id}"] if self.agent_id else []
        for container_id in self.engine.labelled(L.RUN, f"{L.APP}={app}", *mine):
            with self._lock:
                self._ended_by[container_id] = "killed: its app was removed"
            self.engine.remove(container_id, force=True)
            removed += 1
        return removed

    # ---- kept output --------------------------------------------------------------------------
    def _kept_path(self, app: str, run_id: str) -> Path | None:
        return self.kept_dir / app / f"{run_id}.json" if self.kept_dir else None

    def _keep(self, app: str, run_id: str, exited: Exited, tail: _Tail, timeout_seconds: int) -> None:
        path = self._kept_path(app, run_id)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"run_id": run_id, "exit_code": exited.exit_code, "timed_out": exited.timed_out,
                  "oom_killed": exited.oom_killed, "reason": exited.reason(timeout_seconds),
                  "ended_at": time.time(), "truncated": tail.truncated, "lines": list(tail.lines)}
        partial = path.with_suffix(".part")
        partial.write_text(json.dumps(record))
        partial.replace(path)
        kept = sorted(path.parent.glob("*.json"), key=lambda p: p.stat().st_mtime)
        for old in kept[:-KEPT_RUNS_PER_APP]:
            old.unlink(missing_ok=True)

    def status(self, app: str, run_id: str) -> RunStatus:
        """What the run did: its container's state and output while it exists (Docker's word),
        else its kept output. UnknownRun when there is neither."""
        labels = [f"{L.APP}={app}", f"{L.RUN}={run_id}", f"{L.KIND}={KIND_RUN}"]
        for container_id in self.engine.labelled(*labels):
            try:
                record = self.engine.inspect(container_id)
            except NotOnEngine:
                break
            lines = tuple(self.engine.logs_tail(container_id, 100_000))
            tail = _Tail()
            for line in lines:
                tail.add(line)
            if record.running or record.state in ("created", "restarting"):
                return RunStatus(run_id, True, None, tuple(tail.lines), tail.truncated)
            exited = Exited(record.exit_code, oom_killed=record.oom_killed)
            return RunStatus(run_id, False, exited, tuple(tail.lines), tail.truncated,
                             reason=exited.reason())
        path = self._kept_path(app, run_id)
        if path is not None and path.exists():
            kept = json.loads(path.read_text())
            exited = Exited(kept["exit_code"], timed_out=kept["timed_out"], oom_killed=kept["oom_killed"])
            return RunStatus(run_id, False, exited, tuple(kept["lines"]), kept["truncated"],
                             kept["ended_at"], kept["reason"])
        raise UnknownRun(f"no run {run_id} of app {app} on this server (its output is kept for "
                         f"the last {KEPT_RUNS_PER_APP} runs of each app)")

