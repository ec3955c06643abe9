"""Helpers to drive a Tugboat agent over gRPC in tests and to check what it serves over HTTP."""

from __future__ import annotations

import http.client
import time
from urllib.parse import urlsplit

from tugboat.v1 import tugboat_pb2 as pb

from tests.support.sample_app import APP_PORT, repo_url


def build(stub, app: str, repo, sha: str, deployment_id: int = 1, *, timeout: float = 120,
          **fields) -> list:
    """Run Build to completion and return all events (the last one has result or error)."""
    request = pb.BuildRequest(app=app, deployment_id=deployment_id, repo_url=repo_url(repo),
                              commit_sha=sha, dockerfile=fields.pop("dockerfile", "Dockerfile"),
                              **fields)
    return list(stub.Build(request, timeout=timeout))


def deploy(stub, app: str, sha: str, deployment_id: int, *, port: int = APP_PORT,
           image: str | None = None, timeout: float = 120, **fields) -> list:
    """Run Deploy to completion and return all events."""
    request = pb.DeployRequest(app=app, deployment_id=deployment_id, image=image or f"{app}:{sha}",
                               commit_sha=sha, port=port, **fields)
    return list(stub.Deploy(request, timeout=timeout))


def http_get(url: str, path: str = "/", timeout: float = 2.0) -> tuple[int, str]:
    """GET over loopback only; returns (status, body).

    `http://<app>.localhost:PORT` (a front door URL) connects to 127.0.0.1:PORT and sends the
    name as the Host header (glibc does not resolve *.localhost here).
    """
    parts = urlsplit(url)
    headers = {}
    if parts.hostname and parts.hostname.endswith(".localhost"):
        headers["Host"] = parts.netloc
    else:
        assert parts.hostname == "127.0.0.1", f"tests only talk to 127.0.0.1, not {url}"
    conn = http.client.HTTPConnection("127.0.0.1", parts.port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def wait_until(predicate, timeout: float = 5.0, interval: float = 0.05) -> bool:
    """Poll `predicate` until truthy or timeout; returns its last truthiness."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def front_get(front_door: str, host: str, path: str = "/", timeout: float = 2.0) -> tuple[int, str]:
    """GET `path` through the front door ("127.0.0.1:PORT") with `Host: host`."""
    hostname, _, port = front_door.rpartition(":")
    assert hostname == "127.0.0.1", front_door
    conn = http.client.HTTPConnection(hostname, int(port), timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()
