"""GitHub's webhook signature: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`.

The signature covers the exact bytes GitHub sent, so it is checked on the raw body before any
parsing: nothing about an unauthenticated request is trusted or acted upon. The comparison is
constant-time (`hmac.compare_digest`) so that response timing does not leak the expected digest.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Hub-Signature-256"
PREFIX = "sha256="


def sign(secret: str, body: bytes) -> str:
    """The header value GitHub would send for `body` signed with `secret`."""
    return PREFIX + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """True when `header` is a valid signature of `body` under `secret`.

    An empty secret never verifies: an HMAC keyed with "" is forgeable by anyone.
    """
    if not secret or not header:
        return False
    # Header values arrive decoded as latin-1; compare bytes so odd characters cannot raise.
    given = header.strip().encode("latin-1", "replace")
    expected = sign(secret, body).encode("ascii")
    return hmac.compare_digest(given, expected)
