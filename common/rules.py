"""Input rules: the one place that says what an app name, a commit, a domain, a stop signal, an
env key or a health setting may be. The API checks them at create/update, the agent checks them
again at every call; both import this module, so an input the API accepts is never refused later
by the agent.

Every rule matches the whole string (`re.fullmatch`): `^...$` with `re.match` lets a trailing
newline through. A failing rule raises `RuleError` (a `ValueError`) whose message says what is
allowed; each side maps it to its own error (INVALID_ARGUMENT on both).
"""

from __future__ import annotations

import re
import signal as _signal
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Iterable
from urllib.parse import urlsplit


class RuleError(ValueError):
    """An input breaks a rule; the message says what is allowed."""


_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
NAME = re.compile(_LABEL)
HOST = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*")
SHA = re.compile(r"[0-9a-f]{40}")
ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_RT_SIGNAL = re.compile(r"SIGRTM(?:IN|AX)(?:[+-][0-9]{1,2})?")
_URL = re.compile(r"(?:https?|ssh|git|file)://\S+")
_SCP = re.compile(r"[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:\S+")
_BAD_TRANSPORTS = ("ext::", "fd::")

MAX_ENV_VALUE = 32 * 1024
MAX_DOMAINS = 50
MAX_SECONDS = 3600
MAX_BUILD_SECONDS = 6 * 3600


def _shown(value: str) -> str:
    return repr(value if len(value) <= 70 else value[:67] + "...")


def name(value: str, what: str = "app") -> str:
    """Names of apps, servers and tokens: DNS labels, safe in host names, paths and labels."""
    if not value:
        raise RuleError(f"{what} name is empty: use lowercase letters, digits and '-'")
    if not NAME.fullmatch(value):
        raise RuleError(f"{what} name {_shown(value)} is invalid: use 1-63 lowercase letters, "
                        "digits and '-', starting and ending with a letter or digit")
    return value


def app_name(value: str) -> str:
    return name(value, "app")


def commit_sha(value: str) -> str:
    """A full commit id: exactly 40 lowercase hex digits."""
    if not SHA.fullmatch(value or ""):
        raise RuleError(f"commit {_shown(value or '')} is not a full 40-hex-digit commit SHA")
    return value


def deployment_id(value: int) -> int:
    """The control plane's id of a deployment: a positive integer."""
    if value <= 0:
        raise RuleError(f"deployment id {value} is invalid: use the positive id the control plane gave")
    return value


def port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise RuleError(f"port {value} is out of range: use 1 to 65535 (the port the app listens on)")
    return value


def stop_signal(value: str) -> str:
    """The canonical form of a stop signal: `""` -> SIGTERM, `quit`/`SIGQUIT` -> SIGQUIT, `15` -> 15.

    Only signals this host knows by name (or SIGRTMIN/SIGRTMAX offsets, or numbers 1-64):
    Docker refuses anything else at container create, long after the API said yes.
    """
    text = (value or "").upper()
    if not text:
        return "SIGTERM"
    if text.isdigit():
        if 1 <= int(text) <= 64:
            return str(int(text))
    else:
        signame = text if text.startswith("SIG") else "SIG" + text
        if (signame in _signal.Signals.__members__ and signame not in ("SIGKILL", "SIGSTOP")) \
                or _RT_SIGNAL.fullmatch(signame):
            return signame
    raise RuleError(f"stop signal {_shown(value)} is not a signal name like SIGTERM, SIGQUIT or "
                    "SIGINT (or a number 1-64)")


def domain(value: str) -> str:
    """A host name routed to an app: lowercased, without a trailing dot."""
    host = (value or "").lower()
    if host.endswith(".") and not host.endswith(".."):
        host = host[:-1]
    if not HOST.fullmatch(host):
        raise RuleError(f"domain {_shown(value or '')} is not a valid host name: use letters, "
                        "digits, '-' and '.', like www.example.com")
    return host


def domains(values: Iterable[str]) -> list[str]:
    """Normalized, duplicates dropped, order kept."""
    out: list[str] = []
    for value in values:
        host = domain(value)
        if host not in out:
            out.append(host)
    if len(out) > MAX_DOMAINS:
        raise RuleError(f"{len(out)} domains: at most {MAX_DOMAINS} per app")
    return out


def host_header(value: str) -> str:
    """A Host header as a client sends it (`Example.COM:8000`) -> the host name it routes by."""
    host, sep, port_text = (value or "").partition(":")
    if sep and not port_text.isdigit():
        raise RuleError(f"host {_shown(value)} has an invalid port")
    return domain(host)


def app_hosts(app: str, extra: Iterable[str] = ()) -> list[str]:
    """Every host the front door routes to an app: `<app>.localhost`, then its domains."""
    hosts = [f"{app}.localhost"]
    hosts += [d for d in extra if d not in hosts]
    return hosts


def env_key(key: str) -> str:
    if not ENV_KEY.fullmatch(key or ""):
        raise RuleError(f"env key {_shown(key or '')} is invalid: use letters, digits and '_', "
                        "not starting with a digit (at most 128)")
    return key


def env(values: dict[str, str]) -> dict[str, str]:
    for key, value in values.items():
        env_key(key)
        if len(value) > MAX_ENV_VALUE or "\x00" in value:
            raise RuleError(f"env value of {key} is longer than {MAX_ENV_VALUE} bytes or "
                            "contains a NUL byte")
    return values


def health_path(value: str) -> str:
    if not value.startswith("/") or any(c.isspace() for c in value) or len(value) > 1024:
        raise RuleError(f"health path {_shown(value)} must start with '/' and contain no spaces "
                        "(at most 1024 characters)")
    return value


def relative_path(value: str, what: str) -> str:
    """A path inside the repository: relative, no '..', no option-like start."""
    if value in ("", "."):
        return value
    parts = PurePosixPath(value)
    if parts.is_absolute() or ".." in parts.parts or value.startswith("-") \
            or any(c in value for c in "\x00\\\n\r"):
        raise RuleError(f"{what} {_shown(value)} must be a relative path inside the repository")
    return value


def repo_url(value: str) -> str:
    """A repository URL git may be handed: no command-running transports, nothing option-like."""
    url = (value or "").strip()
    if not url:
        raise RuleError("repository URL is empty")
    if any(c in url for c in "\n\r\x00"):
        raise RuleError("repository URL contains control characters")
    if url.startswith("-") or "::" in url or url.lower().startswith(_BAD_TRANSPORTS):
        raise RuleError(f"repository URL {_shown(url)} is not allowed: use https://, ssh://, "
                        "git:// or a path")
    if _URL.fullmatch(url) or _SCP.fullmatch(url) or url.startswith("/"):
        return url
    raise RuleError(f"repository URL {_shown(url)} is not a URL or an absolute path")


def branch(value: str) -> str:
    """A branch name as `git check-ref-format --branch` accepts it, and never option-like."""
    if not value:
        raise RuleError("branch is empty")
    bad = (
        value.startswith(("-", "/", "."))
        or value.endswith(("/", ".", ".lock"))
        or ".." in value or "//" in value or "@{" in value or value == "@"
        or any(c in value for c in " ~^:?*[\\\x7f")
        or any(ord(c) < 32 for c in value)
        or any(part.startswith((".", "-")) for part in value.split("/"))
        or len(value) > 255
    )
    if bad:
        raise RuleError(f"branch {_shown(value)} is not a valid git branch name")
    return value


def seconds(value: int, what: str, *, maximum: int = MAX_SECONDS) -> int:
    """A duration in seconds where 0 means "the default"."""
    if not 0 <= value <= maximum:
        raise RuleError(f"{what} {value} is out of range: use 0 (the default) to {maximum} seconds")
    return value


MAX_HSTS_SECONDS = 2 * 365 * 24 * 3600


def hsts_seconds(value: int) -> int:
    """Strict-Transport-Security max-age: 0 (no header) up to two years."""
    if not 0 <= value <= MAX_HSTS_SECONDS:
        raise RuleError(f"HSTS max-age {value} is out of range: use 0 (off) to "
                        f"{MAX_HSTS_SECONDS} seconds (two years)")
    return value


def bounded(value: int, what: str, low: int, high: int) -> int:
    if not low <= value <= high:
        raise RuleError(f"{what} {value} is out of range: use {low} to {high}")
    return value


def notify_url(url: str) -> str:
    """An http(s) URL with a host, no credentials, no whitespace."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username \
            or any(c.isspace() for c in url) or len(url) > 2048:
        raise RuleError(f"notification URL {_shown(url)} must be an http:// or https:// URL "
                        "without credentials")
    return url


# ---- health gate -----------------------------------------------------------------------------
@dataclass(frozen=True)
class HealthDefaults:
    """What zero means in every health field, on both sides of the wire."""

    path: str = "/"
    timeout_seconds: int = 30
    status_min: int = 200
    status_max: int = 399
    interval_ms: int = 100
    probe_timeout_ms: int = 1000
    healthy_threshold: int = 1


HEALTH = HealthDefaults()
HEALTH_INTERVAL_MS = (10, 60_000)
HEALTH_PROBE_TIMEOUT_MS = (10, 60_000)
HEALTHY_THRESHOLD = (1, 100)
STOP_GRACE_SECONDS = 10
# After a switch the old release keeps its open connections (WebSockets, server-sent events,
# long requests) until they close or this deadline, then it is stopped. Up to a day: a
# long-lived connection may be worth hours of an idle old container.
DRAIN_SECONDS = 60
MAX_DRAIN_SECONDS = 24 * 3600
# How long a deploy's stream follows the drain (reporting the open connections) before the
# deployment finishes and the old release drains on in the background, on the agent.
DRAIN_FOLLOW_SECONDS = 30
MAX_MAINTENANCE_MESSAGE = 1000


def drain_seconds(value: int) -> int:
    """The drain deadline in seconds; 0 means the default (DRAIN_SECONDS)."""
    return seconds(value, "drain period", maximum=MAX_DRAIN_SECONDS)


def maintenance_message(value: str) -> str:
    """The text of an app's maintenance page: one paragraph of printable text (HTML-escaped
    when it is rendered), at most MAX_MAINTENANCE_MESSAGE characters; surrounding space dropped."""
    value = value.strip()
    if len(value) > MAX_MAINTENANCE_MESSAGE:
        raise RuleError(f"maintenance message is {len(value)} characters: at most "
                        f"{MAX_MAINTENANCE_MESSAGE}")
    if any(not c.isprintable() for c in value):
        raise RuleError("maintenance message must be printable text on one line")
    return value


def health(*, status_min: int, status_max: int, interval_ms: int, probe_timeout_ms: int,
           healthy_threshold: int) -> None:
    """The health gate's settings after defaults are applied."""
    if not 100 <= status_min <= status_max <= 599:
        raise RuleError(f"healthy status range {status_min}-{status_max} is invalid: use "
                        "100 <= min <= max <= 599")
    bounded(interval_ms, "health interval (ms)", *HEALTH_INTERVAL_MS)
    bounded(probe_timeout_ms, "health probe timeout (ms)", *HEALTH_PROBE_TIMEOUT_MS)
    bounded(healthy_threshold, "healthy threshold", *HEALTHY_THRESHOLD)
