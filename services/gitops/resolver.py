"""Resolves branches to commits with `git ls-remote` through GitPython, safely.

Every URL and ref is validated first; git runs with the command-running transports disabled,
no terminal prompt, `--end-of-options` before user values, and a time limit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import git
from git.exc import GitCommandError

from services.core import validation as v
from services.core.errors import BranchNotFound, RepositoryNotFound, RepositoryUnreachable, RepositoryUnreadable

_SAFE_CONFIG = [
    "-c", "protocol.ext.allow=never",
    "-c", "protocol.fd.allow=never",
    "-c", "core.askPass=",
    "-c", "credential.helper=",
]


@dataclass(frozen=True)
class RemoteBranch:
    name: str
    sha: str


class GitResolver:
    def __init__(self, timeout: float = 30.0):
        self.timeout = timeout
        self._git = git.Git()

    def _ls_remote(self, url: str, *patterns: str, timeout: float | None = None) -> list[tuple[str, str]]:
        v.repo_url(url)
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_SSH_COMMAND": "ssh -o BatchMode=yes"}
        cmd = ["git", *_SAFE_CONFIG, "ls-remote", "--heads", "--end-of-options", url, *patterns]
        try:
            out = self._git.execute(cmd, env=env, kill_after_timeout=timeout or self.timeout, stdout_as_string=True)
        except GitCommandError as err:
            stderr = (err.stderr or "").strip().removeprefix("stderr:").strip().strip("'").strip()
            if err.status in (-9, 137) or "timed out" in str(err).lower():
                raise RepositoryUnreachable(f"git ls-remote {url} timed out after {timeout or self.timeout:.0f}s") from None
            if "not found" in stderr.lower() or "does not appear to be a git repository" in stderr:
                raise RepositoryNotFound(f"repository {url} not found: {_first_line(stderr)}") from None
            raise RepositoryUnreadable(f"cannot read repository {url}: {_first_line(stderr) or 'git ls-remote failed'}") from None
        refs = []
        for line in out.splitlines():
            sha, _, ref = line.partition("\t")
            if ref.startswith("refs/heads/"):
                refs.append((ref.removeprefix("refs/heads/"), sha))
        return refs

    def resolve(self, url: str, branch: str, *, timeout: float | None = None) -> str:
        v.branch(branch)
        for name, sha in self._ls_remote(url, f"refs/heads/{branch}", timeout=timeout):
            if name == branch:
                return sha
        raise BranchNotFound(f"branch {branch!r} not found in {url}")

    def branches(self, url: str) -> list[RemoteBranch]:
        return sorted((RemoteBranch(n, s) for n, s in self._ls_remote(url)), key=lambda b: b.name)


def _first_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line.removeprefix("fatal: ")
    return ""
