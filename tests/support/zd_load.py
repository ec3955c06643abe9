"""A bounded keep-alive HTTP client for zero-downtime checks: one reused connection to the
front door (127.0.0.1, or a namespace host's address) with a Host header, recording every
request's outcome and timing."""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    start: float  # time.monotonic() when the request was sent
    end: float
    status: int  # 0 when the request failed without an HTTP answer
    body: str
    error: str = ""


class KeepAliveClient(threading.Thread):
    """GET `path` in a loop over one keep-alive connection until `stop()`, `max_seconds` or
    `max_requests` (bounded, whatever happens)."""

    def __init__(self, front_door: str, host: str, path: str = "/", *, pause: float = 0.005,
                 max_seconds: float = 120, max_requests: int = 100_000, timeout: float = 10) -> None:
        super().__init__(daemon=True, name=f"keepalive-{host}{path}")
        hostname, _, port = front_door.rpartition(":")
        self.address, self.port = hostname, int(port)
        self.host, self.path, self.pause = host, path, pause
        self.max_seconds, self.max_requests, self.timeout = max_seconds, max_requests, timeout
        self.samples: list[Sample] = []
        self.connections = 0
        self._halt = threading.Event()

    def _connect(self) -> http.client.HTTPConnection:
        self.connections += 1
        return http.client.HTTPConnection(self.address, self.port, timeout=self.timeout)

    def run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        conn = self._connect()
        while not self._halt.is_set() and time.monotonic() < deadline \
                and len(self.samples) < self.max_requests:
            started = time.monotonic()
            try:
                conn.request("GET", self.path, headers={"Host": self.host})
                response = conn.getresponse()
                body = response.read().decode("utf-8", "replace")
                self.samples.append(Sample(started, time.monotonic(), response.status, body))
                if response.will_close:
                    conn.close()
                    conn = self._connect()
            except (OSError, http.client.HTTPException) as exc:
                self.samples.append(Sample(started, time.monotonic(), 0, "",
                                           f"{type(exc).__name__}: {exc}"))
                conn.close()
                conn = self._connect()
            if self.pause:
                self._halt.wait(self.pause)
        conn.close()

    def stop(self) -> list[Sample]:
        self._halt.set()
        self.join(timeout=self.timeout + 5)
        return list(self.samples)

    def failures(self) -> list[Sample]:
        return [s for s in self.samples if s.status != 200]
