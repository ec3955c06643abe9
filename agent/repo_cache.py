"""Per-app git repository cache: one bare repository per app, fetched incrementally.

A fresh clone per build would re-download history every time; instead each app keeps a bare
repository under `<state_dir>/repos/<app>.git` and fetches only the commit it needs. The fetch runs
through `agent.git_fetch` (no prompts, bounded, killed on cancel); the other git calls are local.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path, PurePosixPath
from typing import IO

import git

from agent.git_fetch import FETCH_DEADLINE_SECONDS, FetchFailed, run_fetch
from agent.locks import KeyedLocks
from common.cancel import CancelToken


class RepoError(Exception):
    """A git operation failed; the message says what and why."""

    def __init__(self, message: str, *, cancelled: bool = False) -> None:
        super().__init__(message)
        self.cancelled = cancelled


def safe_relative(path: str, what: str) -> str:
    """Normalize a repository-relative path, refusing anything that escapes the repository.

    Returns "" for the repository root. Raises ValueError for absolute paths or `..` segments.
    """
    raw = (path or "").strip()
    if raw.startswith("/") or raw.startswith("\\"):
        raise ValueError(f"{what} {path!r} must be relative to the repository, not absolute")
    parts = [p for p in PurePosixPath(raw.replace("\\", "/")).parts if p not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"{what} {path!r} must stay inside the repository (no '..')")
    return "/".join(parts)


def _git_message(exc: git.GitCommandError) -> str:
    text = (exc.stderr or "").strip()
    for prefix in ("stderr:",):
        text = text.removeprefix(prefix).strip()
    return text.strip("'").strip() or str(exc)


class RepoCache:
    """The bare repositories of all apps, with a lock per app.

    Callers hold `lock(app)` around fetch + archive so two builds of one app never touch the
    same repository at once (git's own locking would make one of them fail instead).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._locks = KeyedLocks()

    def path(self, app: str) -> Path:
        return self.root / f"{app}.git"

    def lock(self, app: str):
        return self._locks.hold(app)

    def _open(self, app: str, url: str) -> git.Repo:
        path = self.path(app)
        if (path / "HEAD").exists():
            repo = git.Repo(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            repo = git.Repo.init(path, bare=True)
        try:
            origin = repo.remote("origin")
            if origin.url != url:
                origin.set_url(url)
        except ValueError:
            repo.create_remote("origin", url)
        return repo

    @staticmethod
    def _has_commit(repo: git.Repo, sha: str) -> bool:
        try:
            repo.git.cat_file("-e", f"{sha}^{{commit}}")
            return True
        except git.GitCommandError:
            return False

    def fetch(self, app: str, url: str, sha: str, token: CancelToken | None = None, *,
              deadline: float = FETCH_DEADLINE_SECONDS) -> None:
        """Make `sha` present in the app's cache, fetching as little as possible.

        `deadline` bounds the whole fetch (both attempts); a cancel of `token` kills it at once.
        """
        token = token or CancelToken()
        try:
            repo = self._open(app, url)
        except git.GitCommandError as exc:
            raise RepoError(f"cannot prepare repository cache: {_git_message(exc)}") from exc
        if self._has_commit(repo, sha):
            return
        ends = time.monotonic() + deadline
        try:
            try:
                # Cheapest: only that commit. Servers that refuse fetching by sha fail here.
                run_fetch(self.path(app), ["--depth=1", "origin", sha], token, deadline=deadline)
            except FetchFailed as exc:
                if exc.cancelled or exc.timed_out:
                    raise
                run_fetch(self.path(app), ["origin", "+refs/heads/*:refs/heads/*"], token,
                          deadline=max(ends - time.monotonic(), 0.1))
        except FetchFailed as exc:
            raise RepoError(f"cannot fetch {url}: {exc}", cancelled=exc.cancelled) from exc
        if not self._has_commit(repo, sha):
            raise RepoError(f"commit {sha} not found in {url}")

    def subject(self, app: str, sha: str) -> str:
        try:
            return git.Repo(self.path(app)).git.log("-1", "--format=%s", sha)
        except (git.GitCommandError, git.NoSuchPathError, git.InvalidGitRepositoryError):
            return ""

    def archive(self, app: str, sha: str, context_dir: str, out: IO[bytes]) -> None:
        """Write the tar of `<sha>:<context_dir>` to `out` (the Docker build context)."""
        tree = f"{sha}:{context_dir}" if context_dir else sha
        try:
            git.Repo(self.path(app)).git.archive("--format=tar", tree, output_stream=out)
        except git.GitCommandError as exc:
            raise RepoError(f"cannot archive {context_dir or 'repository root'} at {sha}: "
                            f"{_git_message(exc)}") from exc
        out.flush()
        out.seek(0)

    def has_file(self, app: str, sha: str, path: str) -> bool:
        try:
            git.Repo(self.path(app)).git.cat_file("-e", f"{sha}:{path}")
            return True
        except git.GitCommandError:
            return False

    def remove(self, app: str) -> None:
        with self.lock(app):
            shutil.rmtree(self.path(app), ignore_errors=True)

    def apps(self) -> list[str]:
        """Apps with a repository cache here."""
        if not self.root.is_dir():
            return []
        return sorted(p.name[:-len(".git")] for p in self.root.glob("*.git") if (p / "HEAD").exists())

    def compact(self, app: str) -> int | None:
        """Compact the app's cache (`git gc --auto`: packs the loose objects and the many small
        packs that fetches of one commit each leave, and drops what no ref reaches after
        COMPACT_PRUNE); the bytes it freed, or None when a build holds the cache now (the
        next round compacts it) or git failed."""
        lock = self._locks.get(app)
        if not lock.acquire(blocking=False):
            return None
        try:
            path = self.path(app)
            before = _size(path)
            git.Repo(path).git.gc("--auto", "--quiet", f"--prune={COMPACT_PRUNE}")
            return before - _size(path)
        except (git.GitCommandError, git.NoSuchPathError, git.InvalidGitRepositoryError):
            return None
        finally:
            lock.release()


# Unreachable objects younger than this survive a compaction (a fetch may still be using them).
COMPACT_PRUNE = "1.hour.ago"


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
