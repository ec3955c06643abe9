"""The API's reading of resource names: `common.names`, with a broken name turned into
INVALID_ARGUMENT that names the request field."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from common import names as _names
from common.names import ANY_APP, DeploymentName, app_name, deployment_name  # noqa: F401
from common.rules import RuleError
from services.core.errors import InvalidArgument

T = TypeVar("T")


def _read(parse: Callable[[str], T], value: str, field: str) -> T:
    try:
        return parse(value)
    except RuleError as err:
        raise InvalidArgument(f"{field}: {err}", field=field) from None


def parse_app(name: str, field: str = "name") -> str:
    return _read(_names.parse_app, name, field)


def parse_parent(parent: str, field: str = "parent") -> str | None:
    return _read(_names.parse_parent, parent, field)


def parse_deployment(name: str, field: str = "name") -> DeploymentName:
    return _read(_names.parse_deployment, name, field)
