"""A release killed for memory before it is healthy fails its deployment at START, the old one
serving; an OOM kill after a successful deploy: the app's status says so (DEGRADED, with how often and
the limit in its health detail) and one "app.oom" notification goes out, through the real agent,
Docker's `oom` event, the health monitor and the notification outbox.

The kill is real: the release serves a CGI script that takes 64 MiB under the app's 32 MiB limit,
so the kernel kills that child of httpd and the container runs on (nothing but the OOM shows).
"""

from __future__ import annotations

import json

import pytest
from serversinc.v1 import app_pb2, deployment_pb2

from tests.agent.test_limits import OOM_AT_START, OOM_CGI, WITH_CGI
from tests.integration.conftest import fetch
from tests.integration.test_app_status import fast_health, get_app, health_events, receiver, wait_app  # noqa: F401
from tests.support.agent_calls import http_get
from tests.support.sample_app import commit_files

MIB = 1024 * 1024


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_oom_kill_after_the_deploy_is_in_the_app_status_and_announced_once(
        fast_health, control_plane, control_plane_cli, sample_repo, sample_url, app_name, docker_client,  # noqa: F811
        receiver):  # noqa: F811
    commit_files(sample_repo, {"Dockerfile": WITH_CGI, "oom.cgi": OOM_CGI}, "an endpoint that takes 64 MiB")
    control_plane.create_app(app_name, sample_url, notify_urls=[receiver.url], memory_limit_bytes=32 * MIB)
    first = control_plane.wait(control_plane.deploy(app_name).name)
    assert first.state == deployment_pb2.DEPLOYMENT_STATE_SUCCEEDED, first.failure_reason
    wait_app(control_plane, app_name, lambda a: a.status == app_pb2.APP_STATUS_RUNNING
             and a.HasField("health_observe_time"))
    assert docker_client.containers.get(first.container_id).attrs["HostConfig"]["Memory"] == 32 * MIB

    direct = next(p for p in docker_client.containers.get(first.container_id).ports["8080/tcp"])
    body = http_get(f"http://127.0.0.1:{direct['HostPort']}", "/cgi-bin/oom", timeout=10)[1]
    assert "dd exit 137" in body

    app = wait_app(control_plane, app_name, lambda a: a.status == app_pb2.APP_STATUS_DEGRADED)
    assert "OOM-killed 1 time(s)" in app.health_detail and "memory limit 32 MiB" in app.health_detail
    assert app.current_deployment == first.name and "sample app v1" in fetch(app.url)
    receiver.wait(2)  # deployment.succeeded, then app.oom
    assert control_plane.platform.health.poll() == 0  # the same kill: nothing more to announce
    assert health_events(receiver) == ["app.oom"]
    [payload] = [json.loads(b) for _, b in receiver.received if json.loads(b)["event"] == "app.oom"]
    assert payload["app"] == app_name and payload["deployment"]["name"] == first.name
    assert payload["oom"]["kills"] == 1 and "OOM-killed" in payload["text"]

    cli = control_plane_cli(control_plane.address)
    shown = cli("apps", "show", app_name).stdout
    assert "degraded" in shown and "OOM-killed 1 time(s)" in shown and "32 MiB" in shown, shown
    assert "degraded" in cli("apps", "list").stdout


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_release_that_passes_its_memory_limit_fails_at_start_and_the_old_one_serves(
        control_plane, sample_repo, sample_url, app_name):
    control_plane.create_app(app_name, sample_url, memory_limit_bytes=32 * MIB, cpu_limit_millis=500)
    first = control_plane.wait(control_plane.deploy(app_name).name)
    assert first.state == deployment_pb2.DEPLOYMENT_STATE_SUCCEEDED, first.failure_reason
    commit_files(sample_repo, {"Dockerfile": OOM_AT_START}, "takes 64 MiB at start")
    bad = control_plane.wait(control_plane.deploy(app_name).name)
    assert (bad.state, bad.failure_phase) == (deployment_pb2.DEPLOYMENT_STATE_FAILED,
                                              deployment_pb2.DEPLOYMENT_PHASE_START), bad.failure_reason
    assert "OOM-killed: it passed its memory limit of 32 MiB" in bad.failure_reason
    assert "sample app v1" in fetch(first.url)
