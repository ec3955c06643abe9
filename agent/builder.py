"""Build orchestration: fetch the commit into the app's cache, then build `<app>:<sha>`.

Plain Python over the engine adapter and the repository cache; the servicer only converts the
events yielded here into protobuf messages.
"""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass, replace
from typing import Iterator, Union

from agent import labels as L
from agent.docker_engine import BuildHandle, DockerEngine, EngineError
from agent.operations import CancelToken
from agent.repo_cache import RepoCache, RepoError, safe_relative
from common.specs import BuildSpec

STEP_RE = re.compile(r"^Step (\d+)/(\d+) :")
RUNNING_IN_RE = re.compile(r"^ ---> Running in ([0-9a-f]{12,64})\s*$")
CANCELLED = "cancelled"


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


BuildOutput = Union[BuildLine, BuildSucceeded, BuildFailed]


def normalize_paths(spec: BuildSpec) -> BuildSpec:
    """Return the spec with clean repository-relative paths; ValueError if one escapes."""
    context_dir = safe_relative(spec.context_dir, "context_dir")
    dockerfile = safe_relative(spec.dockerfile or "Dockerfile", "dockerfile")
    if not dockerfile:
        raise ValueError(f"dockerfile {spec.dockerfile!r} must name a file")
    return replace(spec, context_dir=context_dir, dockerfile=dockerfile)


class Builder:
    """Runs builds; each call to `build` is one independent, cancellable build."""

    def __init__(self, engine: DockerEngine, cache: RepoCache) -> None:
        self.engine = engine
        self.cache = cache

    def build(self, spec: BuildSpec, token: CancelToken) -> Iterator[BuildOutput]:
        """Yield log lines, then exactly one BuildSucceeded or BuildFailed.

        Raises ValueError for a dockerfile/context path outside the repository (bad input,
        reported before anything runs).
        """
        spec = normalize_paths(spec)
        context_dir, dockerfile = spec.context_dir, spec.dockerfile
        started = time.monotonic()
        tag = f"{spec.app}:{spec.commit_sha}"

        if not spec.force:
            existing = self.engine.image_id(tag)
            if existing:
                yield BuildLine(f"image {tag} exists; skipping build")
                yield BuildSucceeded(tag, existing, True, self.cache.subject(spec.app, spec.commit_sha),
                                     time.monotonic() - started)
                return

        with self.cache.lock(spec.app):
            if token.cancelled:
                yield BuildFailed(CANCELLED, True)
                return
            yield BuildLine(f"fetching {spec.commit_sha} from {spec.repo_url}")
            try:
                self.cache.fetch(spec.app, spec.repo_url, spec.commit_sha)
            except RepoError as exc:
                yield BuildFailed(str(exc))
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
            yield from self._docker_build(spec, token, context, dockerfile, tag, subject, started)

    def _docker_build(self, spec: BuildSpec, token: CancelToken, context, dockerfile: str,
                      tag: str, subject: str, started: float) -> Iterator[BuildOutput]:
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
        labels = {L.MANAGED: "true", L.APP: spec.app, L.COMMIT: spec.commit_sha}
        image_id = ""
        error = ""
        pending = ""
        total = 0
        try:
            for chunk in self.engine.build(context, dockerfile=dockerfile, tag=tag,
                                           labels=labels, handle=handle):
                if "error" in chunk:
                    error = str(chunk.get("error") or "").strip()
                    continue
                if "aux" in chunk:
                    image_id = (chunk["aux"] or {}).get("ID", image_id)
                text = chunk.get("stream")
                if not text:
                    continue
                pending += text
                while "\n" in pending:
                    line, pending = pending.split("\n", 1)
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
            if pending.strip():
                out = self._line(pending, total)
                if out:
                    yield out
        except EngineError as exc:
            error = str(exc)
        finally:
            unregister()

        if token.cancelled:
            yield BuildFailed(CANCELLED, True)
        elif error:
            yield BuildFailed(error)
        else:
            image_id = self.engine.image_id(tag) or image_id
            if not image_id:
                yield BuildFailed(f"the engine finished without producing {tag}")
            else:
                yield BuildSucceeded(tag, image_id, False, subject, time.monotonic() - started)

    @staticmethod
    def _line(line: str, total: int) -> BuildLine | None:
        line = line.rstrip("\r")
        if not line.strip():
            return None
        match = STEP_RE.match(line)
        if match:
            return BuildLine(line, int(match.group(1)), int(match.group(2)))
        return BuildLine(line, 0, total)
