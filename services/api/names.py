"""Resource names of the API (AIP-122): `apps/{app}` and `apps/{app}/deployments/{id}`.

The API writes only the canonical forms. It reads them leniently where that costs nothing, so
scripts written against earlier releases keep working: a bare app name for an app, and a bare id
or "deployments/{id}" for a deployment. Anything else is INVALID_ARGUMENT naming the expected form,
never a silent guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from common.rules import RuleError
from common.rules import app_name as _check_app
from services.core.errors import InvalidArgument

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


def deployment_name(app: str, deployment_id: int) -> str:
    return f"apps/{app}/deployments/{deployment_id}"


def _app(value: str, field: str) -> str:
    try:
        return _check_app(value)
    except RuleError as err:
        raise InvalidArgument(f"{field}: {err}", field=field) from None


def parse_app(name: str, field: str = "name") -> str:
    """"apps/web" (or the bare "web") -> "web"."""
    if not name:
        raise InvalidArgument(f"{field} is empty: expected apps/{{app}}", field=field)
    if "/" in name and not name.startswith("apps/"):
        raise InvalidArgument(f"{field} {name!r} is not of the form apps/{{app}}", field=field)
    return _app(name.removeprefix("apps/"), field)


def parse_parent(parent: str, field: str = "parent") -> str | None:
    """The app a List or Create is under: "apps/web" or "web" -> "web"; "apps/-" (or empty,
    as before parents existed) -> None, meaning every app."""
    if parent in ("", ANY_APP, app_name(ANY_APP)):
        return None
    return parse_app(parent, field)


def parse_deployment(name: str, field: str = "name") -> DeploymentName:
    """"apps/web/deployments/42", "apps/-/deployments/42", "deployments/42" or "42"."""
    match = _DEPLOYMENT.fullmatch(name or "")
    if match is None or int(match["id"]) <= 0:
        raise InvalidArgument(
            f"{field} {name!r} is not of the form apps/{{app}}/deployments/{{id}}", field=field)
    app = match["app"]
    if app is not None and app != ANY_APP:
        app = _app(app, field)
    return DeploymentName(app=None if app == ANY_APP else app, id=int(match["id"]))
