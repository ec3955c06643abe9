"""Helpers to drive a Tugboat agent over gRPC in tests and to check what it serves over HTTP."""

from __future__ import annotations

import http.client
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from google.protobuf.duration_pb2 import Duration
from serversinc.v1 import deployment_pb2
from tugboat.v1 import tugboat_pb2 as pb

from common.phases import Phase

from tests.support.sample_app import APP_PORT, repo_url


@dataclass(frozen=True)
class BuildSeen:
    """One Build event, flattened: the oneof's branch as plain fields."""

    line: str = ""
    step_current: int = 0
    step_total: int = 0
    result: pb.BuildResult | None = None
    error: str = ""
    cancelled: bool = False
    # Set by a waiting_for_slot event: True when the build starts to wait for a slot, False when it got one.
    waiting_for_slot: bool | None = None


def build_seen(ev: pb.BuildEvent) -> BuildSeen:
    kind = ev.WhichOneof("event")
    if kind == "progress":
        return BuildSeen(ev.progress.line, ev.progress.step_current, ev.progress.step_total)
    if kind == "result":
        return BuildSeen(result=ev.result)
    if kind == "error":
        return BuildSeen(error=ev.error.message, cancelled=ev.error.cancelled)
    if kind == "waiting_for_slot":
        return BuildSeen(waiting_for_slot=ev.waiting_for_slot)
    return BuildSeen(line=ev.line)


@dataclass(frozen=True)
class DeploySeen:
    """One Deploy event, flattened; `failure` is a FailureKind value (0: none)."""

    phase: Phase
    message: str = ""
    container_id: str = ""
    url: str = ""
    failure: int = 0
    error: str = ""


def deploy_seen(ev: pb.DeployEvent) -> DeploySeen:
    phase = Phase(deployment_pb2.DeploymentPhase.Name(ev.phase).removeprefix("DEPLOYMENT_PHASE_"))
    kind = ev.WhichOneof("event")
    if kind == "failure":
        return DeploySeen(phase, container_id=ev.container_id, failure=ev.failure.kind,
                          error=ev.failure.error)
    if kind == "result":
        return DeploySeen(phase, ev.result.message, ev.container_id, ev.result.url)
    return DeploySeen(phase, ev.message, ev.container_id)


def build(stub, app: str, repo, sha: str, deployment_id: int = 1, *, timeout: float = 120,
          **fields) -> list[BuildSeen]:
    """Run Build to completion and return all events (the last one has result or error)."""
    request = pb.BuildRequest(app=app, deployment_id=deployment_id, repo_url=repo_url(repo),
                              commit_sha=sha, dockerfile=fields.pop("dockerfile", "Dockerfile"),
                              **fields)
    return [build_seen(ev) for ev in stub.Build(request, timeout=timeout)]


_DURATIONS = {"health_timeout_seconds": "health_timeout", "stop_grace_seconds": "stop_grace",
              "drain_seconds": "drain"}


def deploy_request(app: str, sha: str, deployment_id: int, *, port: int = APP_PORT,
                   image: str | None = None, **fields) -> pb.DeployRequest:
    """A DeployRequest; `health_timeout_seconds=`, `stop_grace_seconds=` and `drain_seconds=`
    become its Duration fields."""
    for name, field in _DURATIONS.items():
        if name in fields:
            fields[field] = Duration(seconds=fields.pop(name))
    return pb.DeployRequest(app=app, deployment_id=deployment_id, image=image or f"{app}:{sha}",
                            commit_sha=sha, port=port, **fields)


def deploy(stub, app: str, sha: str, deployment_id: int, *, timeout: float = 120,
           **fields) -> list[DeploySeen]:
    """Run Deploy to completion and return all events."""
    request = deploy_request(app, sha, deployment_id, **fields)
    return [deploy_seen(ev) for ev in stub.Deploy(request, timeout=timeout)]


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
