"""The bridge's settings: where it listens, the global secret, limits and cache lifetimes."""

from __future__ import annotations

import os
from dataclasses import dataclass

from common.defaults import DEFAULT_WEBHOOK as DEFAULT_LISTEN
from common.defaults import WEBHOOK_LISTEN_ENV as LISTEN_ENV

SECRET_ENV = "SERVERSINC_WEBHOOK_SECRET"
# GitHub caps webhook payloads at 25 MB and does not deliver larger ones; anything bigger is not
# from GitHub and is refused after reading at most this many bytes plus one.
MAX_BODY = 25 * 1024 * 1024


@dataclass
class WebhookSettings:
    listen: str = DEFAULT_LISTEN
    # The secret for POST /webhooks/github (every matching app). Empty: that endpoint is off,
    # since an HMAC keyed with "" is forgeable; the per-app URLs still work.
    global_secret: str = ""
    max_body: int = MAX_BODY
    apps_ttl: float = 2.0        # ListApps cache
    negative_ttl: float = 0.25   # a delivery matching no app re-lists apps older than this
    secret_ttl: float = 10.0     # per-app secret cache
    secret_retry_age: float = 1.0  # a failed signature re-fetches a secret cached longer than this
    rpc_timeout: float = 5.0     # per control-plane call, well inside GitHub's 10 s
    max_concurrent_creates: int = 2  # CreateDeployment calls in flight (the control plane has one writer)

    @classmethod
    def from_env(cls, environ=None, **overrides) -> "WebhookSettings":
        environ = os.environ if environ is None else environ
        values = {"listen": environ.get(LISTEN_ENV) or DEFAULT_LISTEN,
                  "global_secret": environ.get(SECRET_ENV, "").strip()}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
