"""Container faults between deploys, under steady keep-alive load on the front door: an app
whose process is killed is served again once Docker restarted it (same pinned port, no deploy)
while other apps fail no request; an app whose only container is down answers the 503 page and
comes back when the container does; an agent killed while gating a first deploy leaves nothing
routed to the container that never passed its gate.

The agent killed with SIGKILL is a real process (`python -m agent.main`)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from tugboat.v1 import tugboat_pb2 as pb

from common.phases import Phase
from tests.conftest import agent_config, free_port, new_secret, start_agent
from tests.support.agent_calls import front_get, wait_until
from tests.support.agent_process import run_agent
from tests.support.zd_app import body
from tests.support.zd_load import KeepAliveClient
from tests.zero_downtime.conftest import ZdApp, done

pytestmark = pytest.mark.docker



def _container(docker_client, app: str):
    (container,) = docker_client.containers.list(
        all=True, filters={"label": f"io.serversinc.app={app}"})
    return container


def _host_port(container) -> str:
    container.reload()
    return container.attrs["HostConfig"]["PortBindings"]["8080/tcp"][0]["HostPort"]


def _listed(agent, app: str) -> pb.ContainerInfo:
    (info,) = agent.stub.ListContainers(pb.ListContainersRequest(app=app), timeout=10).containers
    return info


def _restarted(container) -> bool:
    container.reload()
    return container.attrs["RestartCount"] >= 1 and container.status == "running"


def _app_process(container) -> int:
    """The app's own process: the child of the container's init (docker-init), so that killing
    it is a crash Docker's restart policy answers (a `docker kill` counts as a manual stop)."""
    container.reload()
    init = container.attrs["State"]["Pid"]
    children = Path(f"/proc/{init}/task/{init}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def test_killed_app_process_is_served_again_without_a_deploy(agent, make_app_name, docker_client,
                                                            tmp_path):
    crashing = ZdApp(agent, make_app_name(), tmp_path)
    other = ZdApp(agent, make_app_name(), tmp_path)
    done(crashing.deploy("v1"))
    done(other.deploy("v1"))
    container = _container(docker_client, crashing.app)
    port = _host_port(container)
    assert port == container.labels["io.serversinc.host-port"]

    others = KeepAliveClient(agent.front_door, other.host, max_seconds=60)
    crashed = KeepAliveClient(agent.front_door, crashing.host, max_seconds=60)
    others.start(), crashed.start()
    try:
        assert wait_until(lambda: len(others.samples) > 20 and len(crashed.samples) > 20, 10)
        killed_at = time.monotonic()
        os.kill(_app_process(container), signal.SIGKILL)
        assert wait_until(lambda: crashed.failures(), 10)  # it really went down
        assert wait_until(lambda: _restarted(container), 20)
        # No deploy: the restarted container is on its pinned port, HAProxy's check brings it back.
        assert wait_until(lambda: front_get(agent.front_door, crashing.host) == (200, body("v1")), 10)
        assert _host_port(container) == port
        assert wait_until(lambda: len([s for s in crashed.samples[-20:] if s.status == 200]) == 20, 10)
    finally:
        other_samples, crashed_samples = others.stop(), crashed.stop()
    assert len(other_samples) > 100
    assert others.failures() == [], others.failures()[:3]
    # The crashed app fails only from its crash until it serves steadily again (the 20 answers
    # in a row above): the request in flight when its process died (a reset, or HAProxy's 502),
    # a request on a pooled connection to the dead process (a reset), and, if the health check
    # marks the container down before Docker restarted it, the app's 503 page. Measured: a
    # restart that beats the check's `fall` shows no 503 at all, as connection failures are
    # retried (`retry-on conn-failure`).
    failed = [s for s in crashed_samples if s.status != 200]
    assert all(killed_at <= s.end for s in failed), (killed_at, failed[:3])
    assert all("is unavailable" in s.body for s in failed if s.status == 503), failed[:3]
    info = _listed(agent, crashing.app)
    assert info.restart_count >= 1 and info.serving
    assert wait_until(lambda: _listed(agent, crashing.app).health == pb.CONTAINER_HEALTH_HEALTHY, 10)


def test_app_with_its_only_container_down_answers_the_503_page_then_comes_back(
        agent, zd_app, docker_client):
    done(zd_app.deploy("v1"))
    container = _container(docker_client, zd_app.app)
    assert _listed(agent, zd_app.app).health == pb.CONTAINER_HEALTH_HEALTHY
    container.kill()  # a manual stop: Docker does not restart it

    def unavailable():
        status, text = front_get(agent.front_door, zd_app.host)
        return status == 503 and f"{zd_app.app} is unavailable" in text
    assert wait_until(unavailable, 10)
    assert wait_until(lambda: _listed(agent, zd_app.app).health == pb.CONTAINER_HEALTH_UNHEALTHY, 10)
    assert "DOWN" in _listed(agent, zd_app.app).health_detail

    container.start()  # same pinned port: served again with no deploy
    assert wait_until(lambda: front_get(agent.front_door, zd_app.host) == (200, body("v1")), 10)


def test_agent_killed_during_the_gate_of_a_first_deploy_routes_nothing_to_it(
        agent_home, app_name, docker_client, tmp_path):
    secret, front_port = new_secret(), free_port()
    killed = run_agent(agent_home, f"127.0.0.1:{front_port}", secret)
    try:
        app = ZdApp(killed, app_name, tmp_path)
        events = app.deploy_events("v1", health_path="/missing", health_timeout_seconds=60)
        for event in events:
            assert not event.failure, event.error
            if event.phase is Phase.HEALTH:
                break  # the container answers 404: it is being gated, and will never pass
        killed.end(signal.SIGKILL)
    finally:
        killed.close()
    container = _container(docker_client, app_name)
    assert container.attrs["HostConfig"]["RestartPolicy"]["Name"] == "no"  # never passed

    config = agent_config(agent_home, front_door_port=front_port, secret=secret)
    with start_agent(config, docker_client) as second:
        assert second.stub.ListContainers(pb.ListContainersRequest(app=app_name),
                                          timeout=10).containers == []
        assert docker_client.containers.list(
            all=True, filters={"label": f"io.serversinc.app={app_name}"}) == []
        routes = json.loads((agent_home / "routes.json").read_text())
        assert app_name not in routes["apps"]
        status, text = front_get(second.front_door, f"{app_name}.localhost")
        assert status == 404 and "no app is routed" in text


def test_a_deploy_that_changes_the_health_check_moves_the_check_with_its_switch(agent, zd_app):
    done(zd_app.deploy("v1"))
    client = KeepAliveClient(agent.front_door, zd_app.host, max_seconds=60)
    client.start()
    try:
        failed = zd_app.deploy("v1", health_path="/never-there", health_timeout_seconds=1)
        assert failed[-1].failure == pb.FAILURE_KIND_HEALTH
        routes = json.loads((agent.config.state_dir / "routes.json").read_text())
        assert routes["apps"][zd_app.app]["check"]["path"] == "/"  # the old release's check
        check = pb.HealthCheck(status_min=200, status_max=404, interval_ms=50)
        done(zd_app.deploy("v1", health_path="/missing", health_check=check))
        routes = json.loads((agent.config.state_dir / "routes.json").read_text())
        assert routes["apps"][zd_app.app]["check"]["path"] == "/missing"
        assert wait_until(lambda: "/missing" in agent.router.files.config.read_text(), 10)
        assert wait_until(lambda: len(client.samples) > 50, 10)
    finally:
        samples = client.stop()
    assert client.failures() == [], client.failures()[:3]
    assert {s.body for s in samples} == {body("v1")}
    assert _listed(agent, zd_app.app).health == pb.CONTAINER_HEALTH_HEALTHY
