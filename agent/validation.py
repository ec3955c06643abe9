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
