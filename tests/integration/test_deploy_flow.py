"""The core deploy flow end to end: real control plane, real agent, real Docker, real git."""

from __future__ import annotations

import threading

from google.protobuf.field_mask_pb2 import FieldMask
from serversinc.v1 import app_pb2, app_service_pb2, deployment_pb2, deployment_service_pb2

from tests.integration.conftest import fetch
from tests.support.sample_app import commit_version

S = deployment_pb2
PHASES = [
    S.DEPLOYMENT_PHASE_RESOLVE, S.DEPLOYMENT_PHASE_BUILD, S.DEPLOYMENT_PHASE_START,
    S.DEPLOYMENT_PHASE_HEALTH, S.DEPLOYMENT_PHASE_SWITCH, S.DEPLOYMENT_PHASE_STOP_OLD,
]


def containers_of(docker_client, app: str):
    return docker_client.containers.list(all=True, filters={"label": f"io.serversinc.app={app}"})


def test_deploy_commit_1_then_commit_2_replaces_the_container(control_plane, sample_repo, sample_url, app_name, docker_client):
    control_plane.create_app(app_name, sample_url, port=8080)
    first = control_plane.wait(control_plane.deploy(app_name, rebuild=True).name)
    assert first.state == S.DEPLOYMENT_STATE_SUCCEEDED, first.failure_reason
    assert first.commit_sha == sample_repo.head.commit.hexsha
    assert first.image == f"{app_name}:{first.commit_sha}"
    assert first.image_id.startswith("sha256:")
    assert first.build_seconds > 0 and first.deploy_seconds > 0 and not first.build_skipped
    # Even a first deploy reports STOP_OLD (the router's drain step; nothing to stop).
    assert [t.phase for t in first.phase_timings] == PHASES
    assert all(t.HasField("end_time") for t in first.phase_timings)
    assert first.release.image_id == first.image_id and first.release.commit_sha == first.commit_sha
    app = control_plane.apps.GetApp(app_service_pb2.GetAppRequest(name=app_name))
    assert app.url == first.url and "sample app v1" in fetch(app.url)
    assert app.current_commit == first.commit_sha and app.current_commit_message == "sample app v1"
    first_container = first.container_id

    sha2 = commit_version(sample_repo, "v2")
    second = control_plane.wait(control_plane.deploy(app_name).name)
    assert second.state == S.DEPLOYMENT_STATE_SUCCEEDED, second.failure_reason
    assert second.commit_sha == sha2 and not second.build_skipped
    assert [t.phase for t in second.phase_timings] == PHASES
    app = control_plane.apps.GetApp(app_service_pb2.GetAppRequest(name=app_name))
    assert "sample app v2" in fetch(app.url)
    assert app.status == app_pb2_status("RUNNING")
    remaining = containers_of(docker_client, app_name)
    assert [c.id for c in remaining] == [second.container_id]
    assert first_container not in {c.id for c in remaining}

    # The same commit again: the image exists, so no build runs.
    third = control_plane.wait(control_plane.deploy(app_name).name)
    assert third.state == S.DEPLOYMENT_STATE_SUCCEEDED
    assert third.build_skipped and third.build_seconds == 0 and third.image_id == second.image_id
    assert "sample app v2" in fetch(third.url)

    listed = control_plane.deployments.ListDeployments(deployment_service_pb2.ListDeploymentsRequest(parent=f"apps/{app_name}"))
    assert [d.id for d in listed.deployments] == [third.id, second.id, first.id]


def app_pb2_status(name: str) -> int:
    return app_pb2.AppStatus.Value(f"APP_STATUS_{name}")


def test_replayed_event_stream_equals_what_a_live_watcher_saw(control_plane, sample_url, app_name):
    control_plane.create_app(app_name, sample_url)
    dep = control_plane.deploy(app_name, rebuild=True)
    live = []
    watcher = threading.Thread(target=lambda: live.extend(control_plane.events(dep.name)))
    watcher.start()
    watcher.join(60)
    assert live, "the live watcher saw nothing"
    replay = control_plane.events(dep.name, after_seq=0)
    key = lambda e: (e.seq, e.kind, e.phase, e.message, e.step_current, e.step_total, e.state)  # noqa: E731
    assert [key(e) for e in replay] == [key(e) for e in live]
    assert [e.seq for e in live] == list(range(1, len(live) + 1))
    assert live[-1].kind == S.EVENT_KIND_STATE and live[-1].state == S.DEPLOYMENT_STATE_SUCCEEDED
    build_lines = [e.message for e in live if e.kind == S.EVENT_KIND_LOG and e.phase == S.DEPLOYMENT_PHASE_BUILD]
    assert any(line.startswith("Step 1/") for line in build_lines)
    progress = [(e.step_current, e.step_total) for e in live if e.kind == S.EVENT_KIND_PROGRESS]
    assert progress and progress[-1][0] == progress[-1][1]
    # Resuming in the middle returns exactly the rest.
    middle = len(live) // 2
    assert [key(e) for e in control_plane.events(dep.name, after_seq=middle)] == [key(e) for e in live[middle:]]


def test_delete_removes_the_app_its_containers_and_images(control_plane, sample_url, app_name, docker_client):
    control_plane.create_app("never-deployed", sample_url)
    control_plane.apps.DeleteApp(app_service_pb2.DeleteAppRequest(name="never-deployed"))

    control_plane.create_app(app_name, sample_url)
    dep = control_plane.wait(control_plane.deploy(app_name).name)
    assert dep.state == S.DEPLOYMENT_STATE_SUCCEEDED
    assert containers_of(docker_client, app_name)
    control_plane.apps.DeleteApp(app_service_pb2.DeleteAppRequest(name=app_name))
    assert containers_of(docker_client, app_name) == []
    assert docker_client.images.list(name=app_name) == []
    names = [a.name for a in control_plane.apps.ListApps(app_service_pb2.ListAppsRequest()).apps]
    assert names == []


def test_rollback_redeploys_the_previous_release_without_a_build(control_plane, sample_repo, sample_url, app_name, control_plane_cli):
    cli = control_plane_cli(control_plane.address)
    control_plane.create_app(app_name, sample_url, env={"COLOR": "blue"})
    first = control_plane.wait(control_plane.deploy(app_name).name)
    commit_version(sample_repo, "v2")
    control_plane.apps.UpdateApp(app_service_pb2.UpdateAppRequest(
        app=app_pb2.App(name=app_name, env={"COLOR": "green"}), update_mask=FieldMask(paths=["env"])))
    second = control_plane.wait(control_plane.deploy(app_name).name)
    assert "sample app v2" in fetch(second.url)

    done = cli("rollback", app_name, "--watch")
    assert "succeeded" in done.stdout.lower()
    back = control_plane.deployments.ListDeployments(
        deployment_service_pb2.ListDeploymentsRequest(parent=f"apps/{app_name}", page_size=1)).deployments[0]
    assert back.trigger == S.DEPLOYMENT_TRIGGER_ROLLBACK and back.source_deployment == first.name
    assert back.build_skipped and back.commit_sha == first.commit_sha and back.image_id == first.image_id
    assert back.release.env["COLOR"] == "blue"  # the release's own env, not the app's current one
    assert "sample app v1" in fetch(back.url)

    # --to an explicit release; a failed or unknown one is refused.
    cli("rollback", app_name, "--to", str(second.id), "--watch")
    assert "sample app v2" in fetch(control_plane.apps.GetApp(app_service_pb2.GetAppRequest(name=app_name)).url)
    refused = cli("rollback", app_name, "--to", "999", check=False)
    assert refused.returncode == 1 and "not found" in refused.stderr


def test_rollback_without_an_earlier_release_is_refused(control_plane, sample_url, app_name):
    import grpc

    control_plane.create_app(app_name, sample_url)
    control_plane.wait(control_plane.deploy(app_name).name)
    try:
        control_plane.deployments.RollbackApp(deployment_service_pb2.RollbackAppRequest(name=f"apps/{app_name}"))
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "no earlier" in err.details()
    else:
        raise AssertionError("rollback with a single release was accepted")
