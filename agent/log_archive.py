"""Lasting logs: a platform container's output is copied to the agent's state dir before the
container is removed, so the logs of a replaced, crashed or failed release can still be read.

Invariant: every removal of a platform container by the releaser (retiring the old release,
undoing a failed new one, dropping leftovers after a restart) and by app removal goes through
`LogArchive.keep` first. A container that Docker restarted after a crash keeps its earlier output
in the container itself, so it is archived, whole, when it is finally replaced.

Layout: `<state_dir>/logs/<app>/<deployment_id>-<container_id>.log`, one file per container, the
lines exactly as Docker prints them with `timestamps=1` ("RFC3339Nano text"). Written to a
`.part` file then renamed, so a reader never sees half a file. Bounded per app
(`ArchiveLimits`): at most `releases` deployments and `max_bytes` in all, the oldest archived
files deleted first; one container's output larger than the bound keeps its last lines.
"""

from __future__ import annotations

import heapq
import logging
import os
import re
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from agent.docker_engine import DockerEngine, EngineError, split_timestamp

log = logging.getLogger(__name__)

MiB = 1024 * 1024
# The shortest line Docker prints with a timestamp ("2026-12-01T20:00:00.123456789Z \n" is 32
# bytes): asking for max_bytes // 32 lines fetches at least max_bytes of output, or all of it,
# while Docker never reads (and the agent never copies) more of a huge log than that.
MIN_LINE_BYTES = 32
DEFAULT_MAX_MB = 50
DEFAULT_RELEASES = 20
_FILE = re.compile(r"^(\d+)-([0-9a-f]{12,64})\.log$")


def _env_int(name: str, default: int, minimum: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}")
    return value


@dataclass(frozen=True)
class ArchiveLimits:
    """How much of each app's past output the agent keeps (TUGBOAT_LOG_ARCHIVE_MB, default 50;
    TUGBOAT_LOG_ARCHIVE_RELEASES, default 20)."""

    max_bytes: int = DEFAULT_MAX_MB * MiB
    releases: int = DEFAULT_RELEASES

    @classmethod
    def from_env(cls) -> "ArchiveLimits":
        return cls(max_bytes=_env_int("TUGBOAT_LOG_ARCHIVE_MB", DEFAULT_MAX_MB, 1) * MiB,
                   releases=_env_int("TUGBOAT_LOG_ARCHIVE_RELEASES", DEFAULT_RELEASES, 1))


@dataclass(frozen=True)
class ArchivedLog:
    path: Path
    deployment_id: int
    container_id: str
    size: int
    archived: float  # mtime: when it was archived


class LogArchive:
    """Copies containers' output into files before removal; reads them back."""

    def __init__(self, root: Path, engine: DockerEngine, limits: ArchiveLimits | None = None) -> None:
        self.root = Path(root)
        self.engine = engine
        self.limits = limits or ArchiveLimits()
        self._lock = threading.Lock()  # one prune at a time: two retirements may archive at once

    # ---- writing ---------------------------------------------------------------------------
    def keep(self, container_id: str) -> Path | None:
        """Archive a platform container's output (before it is removed). Never raises: a copy
        that fails is logged and the removal goes on (the release must not hang on its logs)."""
        try:
            record = self.engine.inspect(container_id)
        except EngineError:
            return None  # already gone, or the engine does not answer: nothing to copy
        if not record.app or record.deployment_id <= 0:
            return None
        try:
            path = self._write(record.app, record.deployment_id, record.id)
        except (EngineError, OSError) as exc:
            log.warning("logs of %s (%s) not archived: %s", record.name, record.app, exc)
            (self.root / record.app / f"{record.deployment_id}-{record.id}.part").unlink(missing_ok=True)
            return None
        self.prune(record.app)
        return path

    def _write(self, app: str, deployment_id: int, container_id: str) -> Path:
        folder = self.root / app
        # An app's output may hold what it should not have printed: readable by the agent only.
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = folder / f"{deployment_id}-{container_id}.log"
        part = path.with_suffix(".part")
        size, limit = 0, self.limits.max_bytes
        out = os.fdopen(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")
        try:
            for chunk in self.engine.log_chunks(container_id, tail=limit // MIN_LINE_BYTES + 1):
                out.write(chunk)
                size += len(chunk)
                if size > 2 * limit:  # long lines: the copy on disk stays within twice the bound
                    out.close()
                    _keep_last(part, limit)
                    out = open(part, "ab")
                    size = part.stat().st_size
        finally:
            out.close()
        if size > limit:
            _keep_last(part, limit)
        os.replace(part, path)
        return path

    def prune(self, app: str) -> list[Path]:
        """Delete the app's oldest archived files until it is within its bound; the removed paths."""
        with self._lock:
            files = sorted(self.files(app), key=lambda f: (f.archived, f.deployment_id, f.path.name))
            latest: dict[int, float] = {}
            for f in files:  # oldest first: the last time seen is the newest
                latest[f.deployment_id] = f.archived
            keep_ids = set(sorted(latest, key=latest.__getitem__)[-self.limits.releases:])
            total = sum(f.size for f in files)
            removed = []
            for f in files:
                if f.deployment_id in keep_ids and total <= self.limits.max_bytes:
                    continue
                try:
                    f.path.unlink()
                except FileNotFoundError:
                    pass
                total -= f.size
                removed.append(f.path)
            return removed

    # ---- reading ---------------------------------------------------------------------------
    def files(self, app: str, deployment_id: int = 0) -> list[ArchivedLog]:
        """The app's archived files (of one deployment, or all)."""
        folder = self.root / app
        out = []
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            return []
        for entry in entries:
            match = _FILE.match(entry.name)
            if not match or (deployment_id and int(match.group(1)) != deployment_id):
                continue
            try:
                stat = entry.stat()
            except FileNotFoundError:
                continue  # pruned meanwhile
            out.append(ArchivedLog(Path(entry.path), int(match.group(1)), match.group(2),
                                   stat.st_size, stat.st_mtime))
        return out

    def lines(self, app: str, deployment_id: int, *, since: datetime | None = None,
              tail: int = 0) -> Iterator[tuple[datetime, str, str]]:
        """(time, text, container id) of a deployment's archived output in time order (the files
        of several containers merged), from `since` on, the last `tail` only when tail > 0."""
        # With tail, each file's last `tail` lines are enough: a file's lines are in time order,
        # so a line among the merged last `tail` has fewer than `tail` after it in its own file.
        streams = [_read(f, since, last=tail) for f in self.files(app, deployment_id)]
        merged = heapq.merge(*streams, key=lambda item: item[0])
        if tail > 0:
            yield from deque(merged, maxlen=tail)
        else:
            yield from merged

    def remove(self, app: str) -> None:
        """Forget an app's archive entirely (not used on app removal: its logs stay readable)."""
        for f in self.files(app):
            f.path.unlink(missing_ok=True)


def _read(f: ArchivedLog, since: datetime | None, last: int = 0) -> Iterable[tuple[datetime, str, str]]:
    try:
        with open(f.path, "rb") as handle:
            for raw in (_last_lines(handle, last) if last > 0 else handle):
                stamp, text = split_timestamp(raw.rstrip(b"\n").decode("utf-8", "replace"))
                if since is None or stamp >= since:
                    yield stamp, text, f.container_id
    except FileNotFoundError:
        return  # pruned between listing and reading


def _last_lines(handle, count: int, block: int = 65536) -> list[bytes]:
    """The last `count` lines of a file, read backwards a block at a time (a tail of a 50 MiB
    archive reads a few blocks, not the file)."""
    end = handle.seek(0, os.SEEK_END)
    data, pos = b"", end
    while pos > 0 and data.count(b"\n") <= count:
        step = min(block, pos)
        pos -= step
        handle.seek(pos)
        data = handle.read(step) + data
    lines = data.splitlines(keepends=True)
    if pos > 0:
        lines = lines[1:]  # the first one may be cut
    return lines[-count:]


def _keep_last(path: Path, limit: int) -> None:
    """Cut a file to its last `limit` bytes, starting at a line's beginning."""
    with open(path, "rb") as handle:
        start = handle.seek(0, os.SEEK_END) - limit
        if start <= 0:
            return
        handle.seek(start - 1)  # one byte before the window: was its first line cut?
        data = handle.read()
    cut = data.find(b"\n")
    data = data[cut + 1:] if cut >= 0 else data[1:]
    with open(path, "wb") as handle:
        handle.write(data)
