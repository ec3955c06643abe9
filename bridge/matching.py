"""Which apps a push concerns: same repository (however its URL is spelled) and same branch.

GitHub names one repository several ways in a payload (`clone_url`, `ssh_url`, `git_url`,
`html_url`, `url`) and users register apps with any of those spellings, so both sides are
reduced to one canonical form, `host/owner/repo` lowercased (GitHub names are case-insensitive),
before comparing. A local path (how tests and single-machine setups name a repository) is not a
URL and normalizes to itself. Pure functions: no HTTP, no gRPC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

BRANCH_PREFIX = "refs/heads/"
TAG_PREFIX = "refs/tags/"
PAYLOAD_URL_KEYS = ("clone_url", "ssh_url", "git_url", "html_url", "url", "svn_url", "mirror_url")

# scp-like syntax git understands: [user@]host:path (no scheme, no slash before the colon).
_SCP_LIKE = re.compile(r"^(?:[^@/\s]+@)?(?P<host>[^:/\s]+):(?P<path>(?!//).+)$")


@dataclass(frozen=True)
class AppRef:
    """The little of an app that matching needs."""

    name: str
    repo_url: str
    branch: str


def _canonical(host: str, path: str) -> str:
    host = host.lower().rsplit("@", 1)[-1].split(":", 1)[0]  # drop credentials and port
    if host.startswith("www."):
        host = host[4:]
    path = path.strip("/")
    if path.endswith(".git"):
        path = path[:-4]
    path = path.rstrip("/")
    if host == "api.github.com" and path.lower().startswith("repos/"):
        # The REST URL some event payloads carry as `repository.url`.
        host, path = "github.com", path[len("repos/"):]
    return f"{host}/{path}".lower()


def normalize_repo_url(url: str) -> str:
    """`https://github.com/Owner/Repo(.git)`, `git@github.com:owner/repo.git`,
    `ssh://git@github.com/owner/repo`, `git://github.com/owner/repo.git` → `github.com/owner/repo`.

    Local paths (and `file://` URLs) normalize to the path without a trailing slash, case kept:
    file systems are case-sensitive. An empty or blank string normalizes to "" (matches nothing).
    """
    url = (url or "").strip()
    if not url:
        return ""
    if "://" in url:
        parts = urlsplit(url)
        if parts.scheme.lower() == "file":
            return (parts.path.rstrip("/") or "/")
        return _canonical(parts.netloc, parts.path)
    if url.startswith(("/", ".", "~")):
        return url.rstrip("/") or "/"
    scp = _SCP_LIKE.match(url)
    if scp:
        return _canonical(scp.group("host"), scp.group("path"))
    return url.rstrip("/")


def payload_repositories(payload: dict) -> set[str]:
    """Every normalized spelling of the pushed repository that the payload carries."""
    repo = payload.get("repository")
    if not isinstance(repo, dict):
        return set()
    found = set()
    for key in PAYLOAD_URL_KEYS:
        value = repo.get(key)
        if isinstance(value, str) and value.strip():
            normalized = normalize_repo_url(value)
            if normalized:
                found.add(normalized)
    return found


def branch_of(ref: str) -> str | None:
    """`refs/heads/feature/x` → `feature/x`; None for anything that is not a branch ref."""
    if isinstance(ref, str) and ref.startswith(BRANCH_PREFIX) and len(ref) > len(BRANCH_PREFIX):
        return ref[len(BRANCH_PREFIX):]
    return None


def repository_matches(app: AppRef, repositories: set[str]) -> bool:
    return bool(repositories) and normalize_repo_url(app.repo_url) in repositories


def matching_apps(apps: list[AppRef], repositories: set[str], branch: str) -> list[AppRef]:
    """The apps that deploy `branch` of one of `repositories`, in the order given."""
    return [a for a in apps if a.branch == branch and repository_matches(a, repositories)]
