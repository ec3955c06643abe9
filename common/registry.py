"""What the control plane and the agents agree on about the registry: how a registry address
looks, where an app's images live in it (ADDR/serversinc/APP), and what a digest ref is.

The control plane picks the repository and hands it to the agent that pushes; the agents check
it again, pull digest refs, and their retention counts an image's tags in the registry repository
of the app as the app's own. One module, so the three never disagree.
"""

from __future__ import annotations

import re

from common.rules import HOST, NAME, RuleError, _shown

# Images of all apps live under this namespace in the registry, one repository per app.
NAMESPACE = "serversinc"
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def address(value: str) -> str:
    """HOST or HOST:PORT as Docker names a registry in an image reference (no scheme, no path),
    lower-cased. Engines always speak HTTPS to it."""
    value = (value or "").strip().lower()
    if "://" in value:
        raise RuleError(f"registry address {_shown(value)} must not have a scheme: give HOST[:PORT], "
                        "e.g. registry.example.com:5000 (engines speak HTTPS to it)")
    host, sep, port = value.partition(":")
    if not HOST.fullmatch(host) or (sep and not (port.isdigit() and 0 < int(port) < 65536)):
        raise RuleError(f"registry address {_shown(value)} is not HOST[:PORT], e.g. registry.example.com:5000")
    return value


def repository(registry: str, app: str) -> str:
    return f"{registry}/{NAMESPACE}/{app}"


def split_repository(value: str) -> tuple[str, str]:
    """(registry address, app) of ADDR/serversinc/APP, or RuleError."""
    registry, _, rest = (value or "").partition("/")
    namespace, _, app = rest.partition("/")
    if namespace != NAMESPACE or not NAME.fullmatch(app):
        raise RuleError(f"repository {_shown(value)} is not REGISTRY/{NAMESPACE}/APP")
    return address(registry), app


def digest_ref(repo: str, digest: str) -> str:
    return f"{repo}@{digest}"


def split_digest_ref(value: str) -> tuple[str, str] | None:
    """(repository, digest) of REPOSITORY@sha256:…, None for any other reference."""
    repo, sep, digest = (value or "").partition("@")
    return (repo, digest) if sep and DIGEST.fullmatch(digest) else None


def tag_repository(tag: str) -> str:
    """The repository of a tag: `web` of `web:abc`, `10.0.0.1:5000/serversinc/web` of
    `10.0.0.1:5000/serversinc/web:abc` (a registry's port is not a tag)."""
    repo, sep, tail = tag.rpartition(":")
    return repo if sep and "/" not in tail else tag


def is_app_repository(repo: str, app: str) -> bool:
    """The app's own name for its images: `APP`, or its repository in a registry."""
    if repo == app:
        return True
    try:
        return split_repository(repo)[1] == app
    except RuleError:
        return False
