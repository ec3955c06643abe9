"""Front door survives agent and HAProxy restarts; health modes (HTTP range, Docker
HEALTHCHECK); domains, unknown hosts and the stop signal."""

from __future__ import annotations

import json
import os
import signal

import pytest
from tugboat.v1 import tugboat_pb2 as pb

from tests.conftest import agent_config, start_agent
from tests.support.agent_calls import front_get, wait_until
from tests.support.zd_app import body
from tests.zero_downtime.conftest import ZdApp, done

pytestmark = pytest.mark.docker


def _serves(front_door, expected: dict[str, str]) -> bool:
    try:
        return all(front_get(front_door, host, timeout=1) == (200, text)
                   for host, text in expected.items())
    except OSError:
        return False


def test_agent_restart_and_haproxy_restart_bring_every_app_back(agent_home, make_app_name,
                                                                docker_client, tmp_path):
    config = agent_config(agent_home)
    with start_agent(config, docker_client) as first:
        one = ZdApp(first, make_app_name(), tmp_path)
        two = ZdApp(first, make_app_name(), tmp_path)
        two.add_version("v2")
        done(one.deploy("v1"))
        done(two.deploy("v1"))
        done(two.deploy("v2"))  # `two` now serves from its second slot
        expected = {one.host: body("v1"), two.host: body("v2")}
        assert _serves(first.front_door, expected)
        master = first.router.process.master_pid
    # The front door is a service of its own: it keeps serving while no agent runs.
    assert _serves(config.front_door, expected)

    with start_agent(config, docker_client) as second:
        process = second.router.process
        assert process.master_pid == master  # adopted, not restarted
        assert _serves(second.front_door, expected)
        listed = second.stub.ListContainers(pb.ListContainersRequest(), timeout=10).containers
        assert sorted(c.app for c in listed if c.serving) == sorted([one.app, two.app])

        pids = [master] + process.worker_pids()
        assert len(pids) >= 2
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        # The front door service starts a new master from the persisted routes.
        assert wait_until(lambda: process.master_pid not in (None, *pids)
                          and _serves(second.front_door, expected), timeout=15)

        # Routes changed after the restart are rebuilt too (runtime state is re-applied).
        two.agent = second
        done(two.deploy("v1"))
        assert _serves(second.front_door, {one.host: body("v1"), two.host: body("v1")})


def test_unknown_host_is_404_and_domains_route(agent, zd_app):
    done(zd_app.deploy("v1", domains=["Www.Example.TEST", "api.example.test"]))
    for host in (zd_app.host, "www.example.test", "WWW.example.test:8443", "api.example.test"):
        assert front_get(agent.front_door, host) == (200, body("v1")), host
    status, text = front_get(agent.front_door, "nothing.localhost")
    assert status == 404 and "no app" in text
    routes = json.loads((agent.config.state_dir / "routes.json").read_text())
    assert routes["apps"][zd_app.app]["domains"] == ["www.example.test", "api.example.test"]


def test_status_range_and_stop_signal(agent, zd_app, docker_client):
    last = zd_app.deploy("v1", health_path="/missing", health_timeout_seconds=1)[-1]
    assert last.failure == pb.FAILURE_KIND_HEALTH and "answered 404" in last.error
    assert "healthy is 200-399" in last.error
    check = pb.HealthCheck(status_min=200, status_max=404, interval_ms=50, healthy_threshold=3)
    events = zd_app.deploy("v1", health_path="/missing", health_check=check, stop_signal="sigquit")
    ok = done(events)
    assert any("answered 404" in e.message and "3 in a row" in e.message for e in events)
    container = docker_client.containers.get(ok.container_id)
    assert container.attrs["Config"]["StopSignal"] == "SIGQUIT"
    assert front_get(agent.front_door, zd_app.host) == (200, body("v1"))


def test_docker_healthcheck_mode(agent, app_name, tmp_path):
    app = ZdApp(agent, app_name, tmp_path, docker_healthcheck=True)
    docker_mode = pb.HealthCheck(use_docker_healthcheck=True)
    bad = app.deploy("v1", health_check=docker_mode, env={"HEALTH_PATH": "missing"},
                     health_timeout_seconds=20)[-1]
    assert bad.failure == pb.FAILURE_KIND_HEALTH and "HEALTHCHECK reports unhealthy" in bad.error
    events = app.deploy("v1", health_check=docker_mode, env={"START_DELAY": "0.5"})
    done(events)
    assert any("HEALTHCHECK reports healthy" in e.message for e in events)
    assert front_get(agent.front_door, app.host) == (200, body("v1"))


def test_docker_mode_without_healthcheck_fails_clearly(agent, zd_app):
    last = zd_app.deploy("v1", health_check=pb.HealthCheck(use_docker_healthcheck=True))[-1]
    assert last.failure == pb.FAILURE_KIND_HEALTH and "no HEALTHCHECK" in last.error
