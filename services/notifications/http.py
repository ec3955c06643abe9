"""The HTTP adapter for notifications: one signed POST, its outcome in plain values."""

from __future__ import annotations

import hashlib
import hmac

import requests

TIMEOUT_SECONDS = 10


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[bool, str]:
    """(delivered, error). Redirects are not followed: a notification goes where it was told."""
    try:
        response = requests.post(url, data=body, headers=headers, timeout=TIMEOUT_SECONDS, allow_redirects=False)
    except requests.RequestException as err:
        return False, f"{type(err).__name__}: {err}"[:500]
    if 200 <= response.status_code < 300:
        return True, ""
    return False, f"HTTP {response.status_code}"
