"""Input checks shared by the API and the worker. Each failure raises InvalidArgument with a fix in words.

Everything a user types is checked here before it reaches the database, git or Docker.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from services.core.errors import InvalidArgument

APP_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
SHA = re.compile(r"^[0-9a-f]{40}$")
# Transports git must never be asked to use: they run commands or read file descriptors.
_BAD_TRANSPORTS = ("ext::", "fd::")
_URL = re.compile(r"^(https?|ssh|git|file)://[^\s]+$")
_SCP = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+$")
MAX_ENV_VALUE = 32 * 1024


def resource_name(name: str, what: str) -> str:
    """Names of apps, servers and tokens: DNS labels, so they are safe in host names and paths."""
    if not name:
        raise InvalidArgument(f"{what} name is empty: use lowercase letters, digits and '-'")
    if not APP_NAME.match(name):
        shown = name if len(name) <= 70 else name[:67] + "..."
        raise InvalidArgument(
            f"{what} name {shown!r} is invalid: use 1-63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return name


def app_name(name: str) -> str:
    return resource_name(name, "app")


def repo_url(url: str) -> str:
    if not url or not url.strip():
        raise InvalidArgument("repository URL is empty")
    url = url.strip()
    if url.startswith("-") or any(url.lower().startswith(t) for t in _BAD_TRANSPORTS) or "::" in url:
        raise InvalidArgument(f"repository URL {url!r} is not allowed: use https://, ssh://, git:// or a path")
    if any(c in url for c in "\n\r\x00"):
        raise InvalidArgument("repository URL contains control characters")
    if _URL.match(url) or _SCP.match(url) or url.startswith("/"):
        return url
    raise InvalidArgument(f"repository URL {url!r} is not a URL or an absolute path")


def branch(name: str) -> str:
    """A branch name as `git check-ref-format --branch` accepts it, and never option-like."""
    if not name:
        raise InvalidArgument("branch is empty")
    bad = (
        name.startswith(("-", "/", "."))
        or name.endswith(("/", ".", ".lock"))
        or ".." in name
        or "//" in name
        or "@{" in name
        or name == "@"
        or any(c in name for c in " ~^:?*[\\\x7f")
        or any(ord(c) < 32 for c in name)
        or any(part.startswith(".") or part.startswith("-") for part in name.split("/"))
        or len(name) > 255
    )
    if bad:
        raise InvalidArgument(f"branch {name!r} is not a valid git branch name")
    return name


def commit_sha(sha: str) -> str:
    if not SHA.match(sha or ""):
        raise InvalidArgument(f"commit {sha!r} is not a full 40-hex-digit SHA")
    return sha


def port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise InvalidArgument(f"port {value} is out of range: use 1 to 65535")
    return value


def health_path(path: str) -> str:
    if not path.startswith("/") or any(c.isspace() for c in path) or len(path) > 1024:
        raise InvalidArgument(f"health path {path!r} must start with '/' and contain no spaces")
    return path


def relative_path(value: str, what: str) -> str:
    """A path inside the repository: relative, no '..', no option-like start."""
    if value in ("", "."):
        return value
    p = PurePosixPath(value)
    if p.is_absolute() or ".." in p.parts or value.startswith("-") or "\x00" in value or "\\" in value:
        raise InvalidArgument(f"{what} {value!r} must be a relative path inside the repository")
    return value


def env(values: dict[str, str]) -> dict[str, str]:
    for key, value in values.items():
        if not ENV_KEY.match(key):
            raise InvalidArgument(f"env key {key!r} is invalid: use letters, digits and '_', not starting with a digit")
        if len(value) > MAX_ENV_VALUE or "\x00" in value:
            raise InvalidArgument(f"env value of {key} is too long or contains a NUL byte")
    return values


def seconds(value: int, what: str, *, maximum: int) -> int:
    if not 0 <= value <= maximum:
        raise InvalidArgument(f"{what} {value} is out of range: use 0 (default) to {maximum} seconds")
    return value


_SIGNAL = re.compile(r"^(SIG)?[A-Z0-9+-]{2,12}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


def status_range(low: int, high: int) -> None:
    if not (100 <= low <= high <= 599):
        raise InvalidArgument(f"healthy status range {low}-{high} is invalid: use 100 <= min <= max <= 599")


def bounded(value: int, what: str, low: int, high: int) -> int:
    if not low <= value <= high:
        raise InvalidArgument(f"{what} {value} is out of range: use {low} to {high}")
    return value


def stop_signal(name: str) -> str:
    if not _SIGNAL.match(name):
        raise InvalidArgument(f"stop signal {name!r} is not a signal name like SIGTERM or SIGQUIT")
    return name


def domain(name: str) -> str:
    if not _DOMAIN.match(name):
        raise InvalidArgument(f"domain {name!r} is not a valid host name")
    return name


def notify_url(url: str) -> str:
    """An http(s) URL with a host, no credentials, no whitespace."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or any(c.isspace() for c in url) or len(url) > 2048:
        raise InvalidArgument(f"notification URL {url!r} must be an http:// or https:// URL without credentials")
    return url
