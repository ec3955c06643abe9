"""Request validation: app names, commit shas and ports, checked before any work starts."""

from __future__ import annotations

import re

APP_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
SHA_RE = re.compile(r"^[0-9a-f]{40}$")


def check_app(app: str) -> str:
    if not APP_RE.match(app or ""):
        raise ValueError(f"invalid app name {app!r}: use 1-63 lowercase letters, digits and '-', "
                         "starting and ending with a letter or digit")
    return app


def check_sha(sha: str) -> str:
    sha = (sha or "").strip().lower()
    if not SHA_RE.match(sha):
        raise ValueError(f"invalid commit_sha {sha!r}: must be the full 40-hex-digit commit id")
    return sha


def check_deployment_id(deployment_id: int) -> int:
    if deployment_id <= 0:
        raise ValueError(f"invalid deployment_id {deployment_id}: must be a positive integer")
    return deployment_id


def check_port(port: int) -> int:
    if not 1 <= port <= 65535:
        raise ValueError(f"invalid port {port}: must be 1-65535 (the port the app listens on)")
    return port


def check_stop_signal(value: str) -> str:
    """`""` -> SIGTERM; `term`/`SIGTERM`/`15` -> a signal name or number Docker accepts."""
    import signal as _signal

    value = (value or "").strip().upper()
    if not value:
        return "SIGTERM"
    if value.isdigit():
        if 1 <= int(value) <= 64:
            return value
    else:
        name = value if value.startswith("SIG") else "SIG" + value
        if name in _signal.Signals.__members__ or re.match(r"^SIGRTM(IN|AX)([+-]\d{1,2})?$", name):
            return name
    raise ValueError(f"invalid stop_signal {value!r}: use a signal name like SIGTERM or SIGQUIT")


HOST_RE = re.compile(r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


def check_domains(domains) -> list[str]:
    """Extra Host names for the front door: lowercased, without a trailing dot, no duplicates."""
    out: list[str] = []
    for domain in domains:
        host = (domain or "").strip().lower().rstrip(".")
        if not HOST_RE.match(host):
            raise ValueError(f"invalid domain {domain!r}: use a DNS host name "
                             "(letters, digits, '-' and '.')")
        if host not in out:
            out.append(host)
    return out


def check_drain_seconds(value: int) -> int:
    if value < 0 or value > 3600:
        raise ValueError(f"invalid drain_seconds {value}: must be 0-3600 (0 means the default 5)")
    return value
