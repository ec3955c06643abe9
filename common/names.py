"""Resource names (AIP-122): `apps/{app}` and `apps/{app}/deployments/{id}`, written and read here
only, so the API, the notification outbox and every client agree on them.

Only the canonical forms are written. They are read leniently where that costs nothing, so scripts
written against earlier releases keep working: a bare app name for an app, and a bare id or
"deployments/{id}" for a deployment. Anything else is a `RuleError` naming the expected form,
never a silent guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from common.rules import RuleError
from common.rules import app_name as _check_app

# AIP-159: "-" in place of the app lists or reads across every app.
ANY_APP = "-"
_DEPLOYMENT = re.compile(r"(?:apps/(?P<app>[^/]+)/deployments/|deployments/)?(?P<id>[0-9]+)")


@dataclass(frozen=True)
class DeploymentName:
    """A parsed deployment name; `app` is None when the caller did not say (old forms, or "-")."""

    app: str | None
    id: int


def app_name(app: str) -> str:
    return f"apps/{app}"


def deployment_name(app: str | None, deployment_id: int) -> str:
    """The canonical name; `app=None` gives `apps/-/deployments/{id}` (the server finds the app)."""
    return f"apps/{app or ANY_APP}/deployments/{deployment_id}"


def parse_app(name: str) -> str:
    """"apps/web" (or the bare "web") -> "web"."""
    if not name:
        raise RuleError("no app given: expected apps/{app}")
    if "/" in name and not name.startswith("apps/"):
        raise RuleError(f"{name!r} is not of the form apps/{{app}}")
    return _check_app(name.removeprefix("apps/"))


def parse_parent(parent: str) -> str | None:
    """The app a List or Create is under: "apps/web" or "web" -> "web"; "apps/-" (or empty,
    as before parents existed) -> None, meaning every app."""
    if parent in ("", ANY_APP, app_name(ANY_APP)):
        return None
    return parse_app(parent)


def parse_deployment(name: str) -> DeploymentName:
    """"apps/web/deployments/42", "apps/-/deployments/42", "deployments/42" or "42"."""
    match = _DEPLOYMENT.fullmatch(name or "")
    if match is None or int(match["id"]) <= 0:
        raise RuleError(f"{name!r} is not of the form apps/{{app}}/deployments/{{id}} "
                        "(or a deployment number)")
    app = match["app"]
    if app is not None and app != ANY_APP:
        app = _check_app(app)
    return DeploymentName(app=None if app in (None, ANY_APP) else app, id=int(match["id"]))
