"""Maintenance mode on the agent: while on, the front door answers 503 with the app's page (its
message HTML-escaped) and never asks a container; the containers keep running, untouched; off
serves the app again at once. It is persisted: an agent restart and an HAProxy restart keep it."""

from __future__ import annotations

import os
import signal

import grpc
import pytest
from tugboat.v1 import tugboat_pb2 as pb

from tests.conftest import agent_config, start_agent
from tests.support.agent_calls import front_get, wait_until
from tests.support.zd_app import body
from tests.zero_downtime.conftest import ZdApp, done

pytestmark = pytest.mark.docker

MESSAGE = 'Back at 10:00 <script>alert("x")</script> & more'
ESCAPED = "Back at 10:00 &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more"


def _containers(stub, app):
    return sorted((c.id, c.state) for c in stub.ListContainers(pb.ListContainersRequest(app=app)).containers)


def _maintenance(stub, app, on, message=""):
    return stub.SetMaintenance(pb.SetMaintenanceRequest(app=app, enabled=on, message=message))


def _in_maintenance(front_door, host):
    status, text = front_get(front_door, host)
    return status == 503 and ESCAPED in text


def test_maintenance_on_off_keeps_containers_and_survives_restarts(agent_home, docker_client,
                                                                   app_name, tmp_path):
    config = agent_config(agent_home)
    with start_agent(config, docker_client) as agent:
        app = ZdApp(agent, app_name, tmp_path)
        done(app.deploy("v1"))
        before = _containers(agent.stub, app_name)
        assert front_get(agent.front_door, app.host) == (200, body("v1"))

        answer = _maintenance(agent.stub, app_name, True, MESSAGE)
        assert answer.enabled and answer.message == MESSAGE
        status, text = front_get(agent.front_door, app.host)
        assert status == 503 and ESCAPED in text and "<script>" not in text
        assert _containers(agent.stub, app_name) == before  # same ids, still running
        generation = agent.router.api.info()["node"]

    # A new agent process state: the maintenance page is still served, and stays after the
    # restarted agent reconciles its apps.
    with start_agent(config, docker_client) as agent:
        assert _in_maintenance(agent.front_door, app.host)
        assert _containers(agent.stub, app_name) == before
        assert agent.router.api.info()["node"] == generation  # applied at run time, no reload

        # HAProxy killed: the front door service renders the persisted routes when it restarts it.
        master = agent.router.process.master_pid
        os.kill(master, signal.SIGKILL)
        assert wait_until(lambda: agent.router.process.master_pid not in (None, master), timeout=30)
        assert wait_until(lambda: _in_maintenance(agent.front_door, app.host), timeout=30)

        _maintenance(agent.stub, app_name, False)
        assert front_get(agent.front_door, app.host) == (200, body("v1"))
        assert _containers(agent.stub, app_name) == before


def test_maintenance_refuses_bad_input_and_unknown_apps(agent, app_name):
    with pytest.raises(grpc.RpcError) as err:
        _maintenance(agent.stub, app_name, True, "x" * 1001)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as err:
        _maintenance(agent.stub, app_name, True, "two\nlines")
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as err:
        _maintenance(agent.stub, app_name, True, "hello")
    assert err.value.code() is grpc.StatusCode.NOT_FOUND
