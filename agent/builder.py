"""Build orchestration: fetch the commit into the app's cache, then build `<app>:<sha>`.

Plain Python over the engine adapter and the repository cache; the servicer only converts the
events yielded here into protobuf messages.

Invariants: `<app>:<sha>` is reused only when its image carries the fingerprint of the same
build settings (a changed Dockerfile path or context directory rebuilds); no build line is
longer than LINE_LIMIT characters, and the agent never holds more than that of a line that has
not ended yet, whatever the build prints.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import time
from dataclasses import dataclass, replace
from typing import Iterator, Union

from agent import labels as L
from agent.docker_engine import BuildHandle, DockerEngine, EngineError
from agent.limits import build_oom_reason
from agent.operations import CancelToken
from agent.repo_cache import RepoCache, RepoError, safe_relative
from common.specs import BuildSpec

STEP_RE = re.compile(r"^Step (\d+)/(\d+) :")
RUNNING_IN_RE = re.compile(r"^ ---> Running in ([0-9a-f]{12,64})\s*$")
CANCELLED = "cancelled"
# One build line at most this long (characters); the rest of the line is dropped, marked.
LINE_LIMIT = 8192
TRUNCATED = " … [line truncated]"


@dataclass(frozen=True)
class BuildLine:
    line: str
    step_current: int = 0
    step_total: int = 0


@dataclass(frozen=True)
class BuildSucceeded:
    image: str
    image_id: str
    skipped: bool
    commit_message: str
    seconds: float


@dataclass(frozen=True)
class BuildFailed:
    error: str
    cancelled: bool = False


@dataclass(frozen=True)
class SlotNeeded:
    """Yielded once, right before `docker build`: the consumer asks for the next item only when
    it holds one of the server's build slots (agent.build_slots). The builder stays plain
    blocking code; the wait for a slot is the consumer's, on its event loop."""


BuildOutput = Union[BuildLine, SlotNeeded, BuildSucceeded, BuildFailed]


def normalize_paths(spec: BuildSpec) -> BuildSpec:
    """Return the spec with clean repository-relative paths; ValueError if one escapes."""
    context_dir = safe_relative(spec.context_dir, "context_dir")
    dockerfile = safe_relative(spec.dockerfile or "Dockerfile", "dockerfile")
    if not dockerfile:
        raise ValueError(f"dockerfile {spec.dockerfile!r} must name a file")
    return replace(spec, context_dir=context_dir, dockerfile=dockerfile)


def build_fingerprint(spec: BuildSpec) -> str:
    """What, besides the commit, decides the image: the (normalized) Dockerfile path and context.

    Stored as the image's L.BUILD label; an image with another fingerprint is not reused.
    """
    settings = json.dumps({"context_dir": spec.context_dir, "dockerfile": spec.dockerfile},
                          sort_keys=True)
    return hashlib.sha256(settings.encode()).hexdigest()[:32]


class LineSplitter:
    """Cuts a stream of text into lines of at most `limit` characters.

    A longer line yields its first `limit` characters plus the TRUNCATED marker, once; the rest of
    it, up to its newline, is dropped as it arrives, so the buffer never exceeds `limit`.
    """

    def __init__(self, limit: int = LINE_LIMIT) -> None:
        self.limit = limit
        self._pending = ""
        self._dropping = False

    def feed(self, text: str) -> Iterator[str]:
        while text:
            newline = text.find("\n")
            if self._dropping:
                if newline < 0:
                    return
                self._dropping = False
                text = text[newline + 1:]
                continue
            if newline < 0:
                self._pending += text
                if len(self._pending) > self.limit:
                    yield self._pending[:self.limit] + TRUNCATED
                    self._pending = ""
                    self._dropping = True
                return
            line, text = self._pending + text[:newline], text[newline + 1:]
            self._pending = ""
            yield line[:self.limit] + TRUNCATED if len(line) > self.limit else line

    def flush(self) -> Iterator[str]:
        """The last line when the stream ended without a newline."""
        pending, self._pending, self._dropping = self._pending, "", False
        if pending:
            yield pending


class Builder:
    """Runs builds; each call to `build` is one independent, cancellable build."""

    def __init__(self, engine: DockerEngine, cache: RepoCache) -> None:
        self.engine = engine
        self.cache = cache

    def build(self, spec: BuildSpec, token: CancelToken) -> Iterator[BuildOutput]:
        """Yield log lines, then exactly one BuildSucceeded or BuildFailed; SlotNeeded before
        the engine builds (a reused image needs no slot).

        Raises ValueError for a dockerfile/context path outside the repository (bad input,
        reported before anything runs).
        """
        spec = normalize_paths(spec)
        context_dir, dockerfile = spec.context_dir, spec.dockerfile
        started = time.monotonic()
        tag = f"{spec.app}:{spec.commit_sha}"

        fingerprint = build_fingerprint(spec)

        if not spec.force:
            existing = self.engine.image(tag)
            if existing and existing.labels.get(L.BUILD) == fingerprint:
                yield BuildLine(f"image {tag} exists; skipping build")
                yield BuildSucceeded(tag, existing.id, True, self.cache.subject(spec.app, spec.commit_sha),
                                     time.monotonic() - started)
                return
            if existing:
                yield BuildLine(f"image {tag} was built with other build settings (Dockerfile path "
                                f"or context); building again")

        with self.cache.lock(spec.app):
            if token.cancelled:
                yield BuildFailed(CANCELLED, True)
                return
            yield BuildLine(f"fetching {spec.commit_sha} from {spec.repo_url}")
            try:
                self.cache.fetch(spec.app, spec.repo_url, spec.commit_sha, token)
            except RepoError as exc:
                yield BuildFailed(CANCELLED, True) if exc.cancelled or token.cancelled else BuildFailed(str(exc))
                return
            if token.cancelled:
                yield BuildFailed(CANCELLED, True)
                return
            dockerfile_in_repo = f"{context_dir}/{dockerfile}" if context_dir else dockerfile
            if not self.cache.has_file(spec.app, spec.commit_sha, dockerfile_in_repo):
                yield BuildFailed(f"{dockerfile_in_repo} not found at commit {spec.commit_sha}")
                return
            subject = self.cache.subject(spec.app, spec.commit_sha)
            context = tempfile.TemporaryFile(prefix="tugboat-context-")
            try:
                self.cache.archive(spec.app, spec.commit_sha, context_dir, context)
            except RepoError as exc:
                context.close()
                yield BuildFailed(str(exc))
                return

        with context:
            yield SlotNeeded()
            if token.cancelled:  # cancelled while it waited for a slot
                yield BuildFailed(CANCELLED, True)
                return
            yield from self._docker_build(spec, token, context, dockerfile, tag, subject, started,
                                          fingerprint)

    def _docker_build(self, spec: BuildSpec, token: CancelToken, context, dockerfile: str,
                      tag: str, subject: str, started: float, fingerprint: str) -> Iterator[BuildOutput]:
        handle = BuildHandle()
        intermediate: list[str] = []

        def abort() -> None:
            # Dropping the connection makes the daemon cancel the build; removing the step's
            # container as well makes a long RUN stop at once even if the daemon lags.
            handle.abort()
            for cid in list(intermediate):
                try:
                    self.engine.remove(cid, force=True)
                except EngineError:
                    pass

        unregister = token.on_cancel(abort)
        # Docker's legacy builder turns each label into an extra step (shown in step_total).
        labels = {L.MANAGED: "true", L.APP: spec.app, L.COMMIT: spec.commit_sha, L.BUILD: fingerprint}
        image_id = ""
        error = ""
        lines = LineSplitter()
        total = 0
        began = time.time()
        try:
            # Every RUN step's container gets the app's limits, as its release containers do.
            for chunk in self.engine.build(context, dockerfile=dockerfile, tag=tag,
                                           labels=labels, handle=handle,
                                           memory_bytes=spec.memory_bytes,
                                           cpu_millis=spec.cpu_millis):
                if "error" in chunk:
                    error = str(chunk.get("error") or "").strip()
                    continue
                if "aux" in chunk:
                    image_id = (chunk["aux"] or {}).get("ID", image_id)
                text = chunk.get("stream")
                if not text:
                    continue
                for line in lines.feed(text):
                    out = self._line(line, total)
                    if out is None:
                        continue
                    total = out.step_total or total
                    match = RUNNING_IN_RE.match(line)
                    if match:
                        intermediate[:] = [match.group(1)]
                        if token.cancelled:
                            abort()
                    yield out
            for line in lines.flush():
                out = self._line(line, total)
                if out:
                    yield out
        except EngineError as exc:
            error = str(exc)
        finally:
            unregister()

        if token.cancelled:
            yield BuildFailed(CANCELLED, True)
        elif error:
            yield BuildFailed(self._oom_explained(error, intermediate, began, spec.memory_bytes))
        else:
            image_id = self.engine.image_id(tag) or image_id
            if not image_id:
                yield BuildFailed(f"the engine finished without producing {tag}")
            else:
                yield BuildSucceeded(tag, image_id, False, subject, time.monotonic() - started)

    def _oom_explained(self, error: str, steps: list[str], began: float, memory_bytes: int) -> str:
        """A step killed by SIGKILL (code 137) says only that; when the kernel killed it for
        memory (the daemon's `oom` event of the step's container), the reason says so."""
        if "code: 137" not in error or not steps:
            return error
        if not self.engine.oom_killed_in(steps[-1], began - 1, time.time()):
            return error
        return build_oom_reason(memory_bytes, error)

    @staticmethod
    def _line(line: str, total: int) -> BuildLine | None:
        line = line.rstrip("\r")
        if not line.strip():
            return None
        match = STEP_RE.match(line)
        if match:
            return BuildLine(line, int(match.group(1)), int(match.group(2)))
        return BuildLine(line, 0, total)
