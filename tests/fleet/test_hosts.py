"""Tugboat across real hosts: two network-namespace hosts, each with its own Docker engine, agent
and front door, driven by one control plane that reaches them only over their addresses."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from serversinc.v1 import deployment_pb2, server_service_pb2

from services.agents.client import CONNECT_SECONDS
from tests.support.hosts import add_caller
from tests.support.sample_app import commit_version, make_sample_repo, repo_url

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]
SUCCEEDED = deployment_pb2.DEPLOYMENT_STATE_SUCCEEDED
FAILED = deployment_pb2.DEPLOYMENT_STATE_FAILED


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def via_front_door(host, url: str) -> requests.Response:
    """GET the app at `url` (http://<app>.localhost:PORT) through `host`'s front door."""
    return requests.get(f"http://{host.front_door}{urlsplit(url).path or '/'}",
                        headers={"Host": urlsplit(url).netloc}, timeout=5)


def answers_with(address: str, port: int, marker: str) -> bool:
    """True when HTTP on address:port (from the root namespace) serves a body holding `marker`;
    a refused port, or another program's answer (the default engine's containers use the same
    port range here), is False."""
    try:
        with socket.create_connection((address, port), timeout=2) as conn:
            conn.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            conn.settimeout(2)
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
    except OSError:
        return False
    return marker.encode() in data


def deployed(fleet, app: str, **kw) -> deployment_pb2.Deployment:
    dep = fleet.cp.wait(fleet.cp.deploy(app, **kw).name, timeout=180)
    assert dep.state == SUCCEEDED, dep
    return dep


def test_an_app_on_host_b_is_served_by_b_front_door_and_not_on_loopback(fleet, tmp_path):
    app = unique()
    marker = f"v1-{app}"
    repo = make_sample_repo(tmp_path / "repo", marker)
    fleet.app(app, repo_url(repo), "b")
    dep = deployed(fleet, app)
    a, b = fleet.servers["a"], fleet.servers["b"]

    served = via_front_door(b, dep.url)
    assert served.status_code == 200 and marker in served.text
    # Host A never heard of it: its front door has no route, its engine no container.
    assert marker not in via_front_door(a, dep.url).text
    with a.docker() as engine_a:
        assert engine_a.containers.list(all=True, filters={"label": f"io.serversinc.app={app}"}) == []
    # B's published port is B's own: it answers inside B's namespace and not on the root's loopback.
    with b.docker() as engine_b:
        [container] = engine_b.containers.list(filters={"label": f"io.serversinc.app={app}"})
        bindings = [int(p["HostPort"]) for p in container.ports["8080/tcp"]]
    assert bindings, container.ports
    for port in bindings:
        inside = subprocess.run(b.inside("/bin/busybox", "wget", "-qO-", f"http://127.0.0.1:{port}/"),
                                capture_output=True, text=True, timeout=10)
        assert marker in inside.stdout, inside.stderr
        assert not answers_with("127.0.0.1", port, marker)


def build_from(netns: str | None, host, app: str, repo: Path, sha: str, certs: Path) -> str:
    """Runs one Build call to `host`'s agent from `netns` (None: the root namespace)."""
    argv = [sys.executable, "-m", "tests.fleet.build_call", host.agent_address, str(certs), app, str(repo), sha]
    if netns:
        argv = ["nsenter", f"--net={netns}", *argv]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=180, cwd=ROOT,
                          env={**os.environ, "TUGBOAT_TEST_SECRET": host.secret})
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_caller_off_the_allowlist_is_refused_before_any_docker_action(host_set, hosts, agent_certs, tmp_path):
    a = hosts[0]
    caller_netns, caller_address = add_caller(host_set, a)
    app = unique()
    repo = make_sample_repo(tmp_path / "repo", f"v1-{app}")
    sha = repo.head.commit.hexsha

    # Valid client certificate, the right secret, a network path to the agent: only the address is wrong.
    outcome = build_from(caller_netns, a, app, Path(repo.working_tree_dir), sha, agent_certs)
    assert outcome.startswith("PERMISSION_DENIED"), outcome
    assert "allowlist" in outcome
    with a.docker() as engine:
        assert engine.images.list(name=app) == []
        assert engine.containers.list(all=True, filters={"label": f"io.serversinc.app={app}"}) == []

    # The same call from the allowed address (the root namespace's side of A's link) builds.
    outcome = build_from(None, a, app, Path(repo.working_tree_dir), sha, agent_certs)
    assert outcome == "OK", outcome
    with a.docker() as engine:
        assert engine.images.list(name=app), "the allowed call built nothing"
        for image in engine.images.list(name=app):
            engine.images.remove(image.id, force=True)
    assert caller_address not in a.allow


def server_state(fleet, name: str) -> server_service_pb2.Server:
    return fleet.cp.servers.GetServer(server_service_pb2.GetServerRequest(name=name))


def test_an_agent_that_is_down_fails_its_deployments_fast_and_is_used_again_when_back(fleet, tmp_path):
    a, b = fleet.servers["a"], fleet.servers["b"]
    on_a, on_b = unique(), unique()
    repo_a = make_sample_repo(tmp_path / "repo-a", f"v1-{on_a}")
    repo_b = make_sample_repo(tmp_path / "repo-b", f"v1-{on_b}")
    fleet.app(on_a, repo_url(repo_a), "a")
    fleet.app(on_b, repo_url(repo_b), "b")
    url_a = deployed(fleet, on_a).url
    url_b = deployed(fleet, on_b).url

    assert server_state(fleet, "b").state == server_service_pb2.SERVER_STATE_ONLINE
    stopped_at = datetime.now(timezone.utc)
    b.stop_agent()  # SIGKILL: a crash; B's front door outlives its agent
    commit_version(repo_b, f"v2-{on_b}")
    started = time.monotonic()
    failed = fleet.cp.wait(fleet.cp.deploy(on_b).name, timeout=60)
    seconds = time.monotonic() - started
    print(f"deployment to the stopped agent failed after {seconds:.2f}s")
    assert failed.state == FAILED, failed
    assert "server 'b'" in failed.failure_reason and b.agent_address in failed.failure_reason, failed.failure_reason
    # It gave up at the connect deadline (the reason says so), not at the build's long one (tens
    # of minutes); the time it took is printed above, not judged here.
    assert f"unreachable: no connection within {CONNECT_SECONDS:g}s" in failed.failure_reason, failed.failure_reason
    offline = server_state(fleet, "b")
    assert offline.state == server_service_pb2.SERVER_STATE_OFFLINE and b.agent_address in offline.error
    # It says when B last answered: before it stopped (`servers list`: "offline, last seen ...").
    assert offline.HasField("last_seen_time"), offline
    assert offline.last_seen_time.ToDatetime(tzinfo=timezone.utc) <= stopped_at

    # The other host keeps serving and deploying; B's front door keeps serving its last release.
    assert f"v1-{on_a}" in via_front_door(a, url_a).text
    commit_version(repo_a, f"v2-{on_a}")
    deployed(fleet, on_a)
    assert f"v2-{on_a}" in via_front_door(a, url_a).text
    assert f"v1-{on_b}" in via_front_door(b, url_b).text

    # Back again: the next deployment to it succeeds with no step by anyone.
    b.start_agent()
    deployed(fleet, on_b)
    assert f"v2-{on_b}" in via_front_door(b, url_b).text
    assert server_state(fleet, "b").state == server_service_pb2.SERVER_STATE_ONLINE
