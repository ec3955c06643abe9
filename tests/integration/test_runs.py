"""`serversinc run` and release commands through the control plane, the real agent and engine:
the command's output and exit code, env and secret env, no container left; a detached run listed
and its output read after it ended; bad input refused; a failing release command fails the
deployment at RELEASE_COMMAND with its output in the events, and the old release serves on."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from serversinc.v1 import app_pb2, app_service_pb2, deployment_pb2, run_pb2

from tests.integration.conftest import fetch
from tests.support.agent_calls import wait_until
from tests.support.sample_app import commit_version

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

SH = "/bin/busybox"


def _deployed(control_plane, app_name, sample_url, **fields) -> deployment_pb2.Deployment:
    control_plane.create_app(app_name, sample_url, **fields)
    dep = control_plane.wait(control_plane.deploy(app_name).name)
    assert dep.state == deployment_pb2.DEPLOYMENT_STATE_SUCCEEDED, dep.failure_reason
    return dep


def _run_containers(docker_client, app):
    """Ids only (a list call, no inspect each: a container removed meanwhile is no error)."""
    return [c["Id"] for c in docker_client.api.containers(
        all=True, filters={"label": [f"io.serversinc.app={app}", "io.serversinc.run"]})]


def test_run_streams_output_exits_with_the_command_code_and_leaves_no_container(
        control_plane, control_plane_cli, sample_url, app_name, docker_client):
    _deployed(control_plane, app_name, sample_url, env={"GREETING": "hello"},
              secret_env={"TOKEN": "s3cret-value"})
    cli = control_plane_cli(control_plane.address)
    done = cli("run", app_name, "--", SH, "sh", "-c", 'echo hi; echo "$GREETING $TOKEN" >&2; exit 3',
               check=False)
    assert done.returncode == 3, done.stderr
    # stdout and stderr are two pipes: Docker keeps each one's order, not the order between them.
    assert sorted(done.stdout.splitlines()) == ["hello s3cret-value", "hi"]
    assert "exited with status 3" in done.stderr
    assert _run_containers(docker_client, app_name) == []
    [run] = cli.json("runs", app_name, "--json")
    assert run["state"] == "RUN_STATE_FAILED" and run["exit_code"] == 3
    assert run["command"] == [SH, "sh", "-c", 'echo hi; echo "$GREETING $TOKEN" >&2; exit 3']
    assert sorted(cli("runs", "logs", app_name, str(run["id"])).stdout.splitlines()) == ["hello s3cret-value", "hi"]
    assert cli("run", app_name, "--", SH, "true").returncode == 0


def test_a_detached_run_is_listed_and_its_output_read_after_it_ends(
        control_plane, control_plane_cli, sample_url, app_name, docker_client):
    _deployed(control_plane, app_name, sample_url)
    cli = control_plane_cli(control_plane.address)
    started = cli("run", app_name, "--detach", "--", SH, "sh", "-c", "echo one; echo two; exit 4")
    assert started.stdout == "" and f"apps/{app_name}/runs/" in started.stderr

    def ended():
        [run] = cli.json("runs", app_name, "--json")
        return run if run["state"] != "RUN_STATE_RUNNING" else None
    assert wait_until(ended, timeout=30)
    run = ended()
    assert run["state"] == "RUN_STATE_FAILED" and run["exit_code"] == 4 and run["detach"]
    assert run["reason"] == "exited with status 4" and run["end_time"]
    assert cli("runs", "logs", app_name, str(run["id"])).stdout.splitlines() == ["one", "two"]
    assert wait_until(lambda: _run_containers(docker_client, app_name) == [], timeout=30)
    got = control_plane.apps.GetAppRun(app_service_pb2.GetAppRunRequest(name=run["name"]))
    assert got.state == run_pb2.RUN_STATE_FAILED and got.exit_code == 4


def test_bad_run_requests_are_refused_and_change_nothing(
        control_plane, control_plane_cli, sample_url, app_name):
    cli = control_plane_cli(control_plane.address)
    unknown = cli("run", "no-such-app", "--", SH, "true", check=False)
    assert unknown.returncode == 1 and "not found" in unknown.stderr
    control_plane.create_app(app_name, sample_url)
    never = cli("run", app_name, "--", SH, "true", check=False)
    assert never.returncode == 1 and "nothing serves yet: deploy first" in never.stderr
    with pytest.raises(grpc.RpcError) as err:
        list(control_plane.apps.RunAppCommand(app_service_pb2.RunAppCommandRequest(
            name=app_name, command=[SH, "true"])))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert cli("run", app_name, check=False).returncode == 2
    assert cli("run", app_name, "--", check=False).returncode == 2
    with pytest.raises(grpc.RpcError) as err:
        list(control_plane.apps.RunAppCommand(app_service_pb2.RunAppCommandRequest(name=app_name)))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert cli.json("runs", app_name, "--json") == []


def test_a_failing_release_command_fails_at_its_phase_and_the_old_release_serves(
        control_plane, sample_repo, sample_url, app_name, docker_client):
    first = _deployed(control_plane, app_name, sample_url)
    commit_version(sample_repo, "v2")
    control_plane.apps.UpdateApp(app_service_pb2.UpdateAppRequest(
        app=app_pb2.App(name=app_name, release_command=[SH, "sh", "-c", "echo migrating; exit 3"]),
        update_mask=FieldMask(paths=["release_command"])))
    failed = control_plane.wait(control_plane.deploy(app_name).name)
    assert failed.state == deployment_pb2.DEPLOYMENT_STATE_FAILED
    assert failed.failure_phase == deployment_pb2.DEPLOYMENT_PHASE_RELEASE_COMMAND
    assert failed.failure_reason == "release command exited with status 3"
    events = control_plane.events(failed.name)
    assert any(e.message == "migrating" and e.phase == deployment_pb2.DEPLOYMENT_PHASE_RELEASE_COMMAND
               for e in events)
    assert deployment_pb2.DEPLOYMENT_PHASE_START not in [t.phase for t in failed.phase_timings]
    app = control_plane.apps.GetApp(app_service_pb2.GetAppRequest(name=app_name))
    assert app.current_deployment == first.name and "sample app v1" in fetch(app.url)
    assert _run_containers(docker_client, app_name) == []

    control_plane.apps.UpdateApp(app_service_pb2.UpdateAppRequest(
        app=app_pb2.App(name=app_name, release_command=[SH, "sh", "-c", "echo migrated"]),
        update_mask=FieldMask(paths=["release_command"])))
    ok = control_plane.wait(control_plane.deploy(app_name).name)
    assert ok.state == deployment_pb2.DEPLOYMENT_STATE_SUCCEEDED, ok.failure_reason
    phases = [t.phase for t in ok.phase_timings]
    assert phases.index(deployment_pb2.DEPLOYMENT_PHASE_RELEASE_COMMAND) < phases.index(
        deployment_pb2.DEPLOYMENT_PHASE_START)
    assert [e.message for e in control_plane.events(ok.name)].count("migrated") == 1
    assert "sample app v2" in fetch(app.url)
