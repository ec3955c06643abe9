"""HTTP health probe against a container's loopback-published port."""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str  # status line on an answer, the connection error otherwise


def probe(base_url: str, path: str = "/", timeout: float = 1.0) -> ProbeResult:
    """One GET; healthy on 2xx or 3xx.

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
        ok = 200 <= response.status < 400
        return ProbeResult(ok, f"GET {path} answered {response.status} {response.reason}")
    except (OSError, http.client.HTTPException) as exc:
        return ProbeResult(False, f"GET {path} failed: {exc or type(exc).__name__}")
    finally:
        conn.close()
