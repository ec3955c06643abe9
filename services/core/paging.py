"""Page tokens for List methods (AIP-158): opaque to clients, a cursor to us."""

from __future__ import annotations

import base64
import json

from services.core.errors import InvalidArgument


def page_size(requested: int, *, default: int, maximum: int) -> int:
    if requested < 0:
        raise InvalidArgument("page_size must not be negative", field="page_size")
    return min(requested or default, maximum)


def encode(cursor: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(cursor, separators=(",", ":")).encode()).decode()


def decode(token: str) -> dict:
    if not token:
        return {}
    try:
        value = json.loads(base64.urlsafe_b64decode(token.encode()))
        if not isinstance(value, dict):
            raise ValueError
        return value
    except ValueError:
        raise InvalidArgument("page_token is not one this server issued", field="page_token") from None
