"""Health gate for a new container: HTTP probes against its loopback port, or Docker's own
HEALTHCHECK status. Pure policy here; the releaser loops and reads container state."""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_STATUS_MIN = 200
DEFAULT_STATUS_MAX = 399
DEFAULT_INTERVAL_MS = 100
DEFAULT_PROBE_TIMEOUT_MS = 1000
DEFAULT_HEALTHY_THRESHOLD = 1


@dataclass(frozen=True)
class HealthPolicy:
    """How a new container is judged healthy (zero values in the request mean these defaults)."""

    use_docker_healthcheck: bool = False
    status_min: int = DEFAULT_STATUS_MIN
    status_max: int = DEFAULT_STATUS_MAX
    interval_ms: int = DEFAULT_INTERVAL_MS
    probe_timeout_ms: int = DEFAULT_PROBE_TIMEOUT_MS
    healthy_threshold: int = DEFAULT_HEALTHY_THRESHOLD

    @classmethod
    def from_values(cls, *, use_docker_healthcheck=False, status_min=0, status_max=0,
                    interval_ms=0, probe_timeout_ms=0, healthy_threshold=0) -> "HealthPolicy":
        policy = cls(bool(use_docker_healthcheck), status_min or DEFAULT_STATUS_MIN,
                     status_max or DEFAULT_STATUS_MAX, interval_ms or DEFAULT_INTERVAL_MS,
                     probe_timeout_ms or DEFAULT_PROBE_TIMEOUT_MS,
                     healthy_threshold or DEFAULT_HEALTHY_THRESHOLD)
        policy.check()
        return policy

    def check(self) -> None:
        if not 100 <= self.status_min <= self.status_max <= 599:
            raise ValueError(f"invalid health status range {self.status_min}-{self.status_max}: "
                             "need 100 <= status_min <= status_max <= 599")
        if not 1 <= self.interval_ms <= 60_000:
            raise ValueError(f"invalid health interval_ms {self.interval_ms}: must be 1-60000")
        if not 1 <= self.probe_timeout_ms <= 60_000:
            raise ValueError(f"invalid health probe_timeout_ms {self.probe_timeout_ms}: "
                             "must be 1-60000")
        if not 1 <= self.healthy_threshold <= 100:
            raise ValueError(f"invalid healthy_threshold {self.healthy_threshold}: must be 1-100")


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str  # status line on an answer, the connection error otherwise


def probe(base_url: str, path: str = "/", timeout: float = 1.0, *,
          status_min: int = DEFAULT_STATUS_MIN, status_max: int = DEFAULT_STATUS_MAX) -> ProbeResult:
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
