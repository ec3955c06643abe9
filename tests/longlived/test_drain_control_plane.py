"""The drain through the control plane: a deployment whose old release holds open WebSockets
succeeds without waiting out the drain deadline, its events show the old container's open
connections, and ListAppContainers (what the dashboard's containers tab reads) reports that
container draining with its count until the connections close."""

from __future__ import annotations

import pytest
from serversinc.v1 import app_service_pb2, deployment_pb2

from tests.integration.conftest import control_plane, database_url  # noqa: F401
from tests.support.agent_calls import wait_until
from tests.support.sample_app import repo_url
from tests.support.ws_app import WebSocket, commit_ws_version, greeting, make_ws_repo

pytestmark = pytest.mark.docker

HELD = 20


def _containers(control_plane, app):  # noqa: F811
    return control_plane.apps.ListAppContainers(
        app_service_pb2.ListAppContainersRequest(parent=f"apps/{app}")).containers


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_long_drain_is_shown_and_does_not_hold_the_deployment(control_plane, agent, app_name,  # noqa: F811
                                                                tmp_path):
    repo = make_ws_repo(tmp_path / "ws-repo", "v1")
    control_plane.create_app(app_name, repo_url(repo), port=8080, drain_seconds=3600)
    first = control_plane.wait(control_plane.deploy(app_name, rebuild=True).name, timeout=180)
    assert first.state == deployment_pb2.DEPLOYMENT_STATE_SUCCEEDED, first.failure_reason
    host = f"{app_name}.localhost"
    held = [WebSocket(agent.front_door, host) for _ in range(HELD)]
    assert {ws.greeting for ws in held} == {greeting("v1")}

    commit_ws_version(repo, "v2")
    second = control_plane.deploy(app_name, rebuild=True)
    done = control_plane.wait(second.name, timeout=180)  # an hour's drain deadline: not waited out
    assert done.state == deployment_pb2.DEPLOYMENT_STATE_SUCCEEDED, done.failure_reason
    lines = [e.message for e in control_plane.events(second.name)]
    assert any(f"{HELD} connection(s) open" in line for line in lines), lines
    assert WebSocket(agent.front_door, host).greeting == greeting("v2")
    assert not any(ws.is_closed() for ws in held)

    old = [c for c in _containers(control_plane, app_name) if c.draining]
    assert len(old) == 1 and old[0].open_connections == HELD and old[0].id == first.container_id
    for ws in held:
        ws.close()
    assert wait_until(lambda: not any(c.draining or c.id == first.container_id
                                      for c in _containers(control_plane, app_name)), timeout=60)
