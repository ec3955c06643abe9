"""Health gate for a new container: HTTP probes against its loopback port, or Docker's own
HEALTHCHECK status. Pure policy here; the releaser loops and reads container state."""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from urllib.parse import urlsplit

from common import rules
from common.rules import HEALTH


@dataclass(frozen=True)
class HealthPolicy:
    """How a new container is judged healthy. Zero values in the request mean the defaults of
    `common.rules.HEALTH`, and the bounds are `common.rules.health`: the API stored the app with
    the same ones, so a spec it accepted is never refused here."""

    use_docker_healthcheck: bool = False
    status_min: int = HEALTH.status_min
    status_max: int = HEALTH.status_max
    interval_ms: int = HEALTH.interval_ms
    probe_timeout_ms: int = HEALTH.probe_timeout_ms
    healthy_threshold: int = HEALTH.healthy_threshold

    @classmethod
    def from_values(cls, *, use_docker_healthcheck=False, status_min=0, status_max=0,
                    interval_ms=0, probe_timeout_ms=0, healthy_threshold=0) -> "HealthPolicy":
        """The policy for a request's values; `RuleError` (a ValueError) when one is out of bounds."""
        policy = cls(bool(use_docker_healthcheck), status_min or HEALTH.status_min,
                     status_max or HEALTH.status_max, interval_ms or HEALTH.interval_ms,
                     probe_timeout_ms or HEALTH.probe_timeout_ms,
                     healthy_threshold or HEALTH.healthy_threshold)
        rules.health(status_min=policy.status_min, status_max=policy.status_max,
                     interval_ms=policy.interval_ms, probe_timeout_ms=policy.probe_timeout_ms,
                     healthy_threshold=policy.healthy_threshold)
        return policy


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str  # status line on an answer, the connection error otherwise


def probe(base_url: str, path: str = "/", timeout: float = 1.0, *,
          status_min: int = HEALTH.status_min, status_max: int = HEALTH.status_max) -> ProbeResult:
    """One GET; healthy when the status is within [status_min, status_max] (default 2xx/3xx).

    http.client rather than requests: no proxies from the environment (the strict network
    rule says only 127.0.0.1) and no redirects followed (a 3xx already proves the app answers).
    """
    parts = urlsplit(base_url)
    if not path.startswith("/"):
        path = "/" + path
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"User-Agent": "tugboat-health"})
        response = conn.getresponse()
        response.read(65536)
        ok = status_min <= response.status <= status_max
        detail = f"GET {path} answered {response.status} {response.reason}"
        if not ok:
            detail += f" (healthy is {status_min}-{status_max})"
        return ProbeResult(ok, detail)
    except (OSError, http.client.HTTPException) as exc:
        return ProbeResult(False, f"GET {path} failed: {exc or type(exc).__name__}")
    finally:
        conn.close()
