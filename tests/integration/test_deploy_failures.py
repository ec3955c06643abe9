"""Failed deployments leave the old version serving and a truthful record of where and why."""

from __future__ import annotations

from serversinc.v1 import app_service_pb2, deployment_pb2

from tests.integration.conftest import fetch
from tests.support.sample_app import DOCKERFILE, commit_files

S = deployment_pb2


def deploy_v1(control_plane, app_name, sample_url, **fields):
    control_plane.create_app(app_name, sample_url, **fields)
    first = control_plane.wait(control_plane.deploy(app_name).name)
    assert first.state == S.DEPLOYMENT_STATE_SUCCEEDED, first.failure_reason
    assert "sample app v1" in fetch(first.url)
    return first


def assert_still_serving_v1(control_plane, app_name, first, docker_client):
    app = control_plane.apps.GetApp(app_service_pb2.GetAppRequest(name=app_name))
    assert app.url == first.url and app.current_deployment == first.name
    assert "sample app v1" in fetch(app.url)
    running = docker_client.containers.list(filters={"label": f"io.serversinc.app={app_name}"})
    assert [c.id for c in running] == [first.container_id]


def log_lines(control_plane, name):
    return [e.message for e in control_plane.events(name) if e.kind == S.EVENT_KIND_LOG]


def test_a_dockerfile_that_fails_to_build_fails_at_build(control_plane, sample_repo, sample_url, app_name, docker_client):
    first = deploy_v1(control_plane, app_name, sample_url)
    commit_files(sample_repo, {"Dockerfile": DOCKERFILE + 'RUN ["/bin/busybox","false"]\n'}, "broken build")
    dep = control_plane.wait(control_plane.deploy(app_name).name)
    assert dep.state == S.DEPLOYMENT_STATE_FAILED
    assert dep.failure_phase == S.DEPLOYMENT_PHASE_BUILD
    assert "returned a non-zero code: 1" in dep.failure_reason
    assert any("returned a non-zero code: 1" in line for line in log_lines(control_plane, dep.name))
    assert_still_serving_v1(control_plane, app_name, first, docker_client)
    app = control_plane.apps.GetApp(app_service_pb2.GetAppRequest(name=app_name))
    # v1 serves, so the app is running it; the failed deployment is flagged beside it.
    assert app.status == app_service_status("RUNNING")
    assert (app.latest_deployment, app.latest_deployment_failed) == (dep.name, True)


def test_a_container_that_exits_at_once_fails_at_start(control_plane, sample_repo, sample_url, app_name, docker_client):
    first = deploy_v1(control_plane, app_name, sample_url)
    commit_files(sample_repo, {"Dockerfile": DOCKERFILE.replace(
        'CMD ["/bin/busybox","httpd","-f","-p","8080","-h","/www"]', 'CMD ["/bin/busybox","sh","-c","echo boom; exit 3"]')},
        "exits at once")
    dep = control_plane.wait(control_plane.deploy(app_name).name)
    assert dep.state == S.DEPLOYMENT_STATE_FAILED
    assert dep.failure_phase in (S.DEPLOYMENT_PHASE_START, S.DEPLOYMENT_PHASE_HEALTH)
    assert "3" in dep.failure_reason and "boom" in dep.failure_reason
    assert_still_serving_v1(control_plane, app_name, first, docker_client)


def test_a_container_that_never_answers_fails_its_health_check(control_plane, sample_repo, sample_url, app_name, docker_client):
    first = deploy_v1(control_plane, app_name, sample_url, health_timeout_seconds=2)
    commit_files(sample_repo, {"Dockerfile": DOCKERFILE.replace(
        'CMD ["/bin/busybox","httpd","-f","-p","8080","-h","/www"]', 'CMD ["/bin/busybox","sleep","600"]')},
        "never listens")
    dep = control_plane.wait(control_plane.deploy(app_name).name)
    assert dep.state == S.DEPLOYMENT_STATE_FAILED
    assert dep.failure_phase == S.DEPLOYMENT_PHASE_HEALTH, dep.failure_reason
    assert_still_serving_v1(control_plane, app_name, first, docker_client)


def test_an_unknown_branch_fails_at_resolve(control_plane, sample_url, app_name, docker_client):
    control_plane.create_app(app_name, sample_url, branch="no-such-branch")
    dep = control_plane.wait(control_plane.deploy(app_name).name)
    assert dep.state == S.DEPLOYMENT_STATE_FAILED
    assert dep.failure_phase == S.DEPLOYMENT_PHASE_RESOLVE
    assert "no-such-branch" in dep.failure_reason and "not found" in dep.failure_reason
    assert docker_client.containers.list(all=True, filters={"label": f"io.serversinc.app={app_name}"}) == []


def app_service_status(name: str) -> int:
    from serversinc.v1 import app_pb2

    return app_pb2.AppStatus.Value(f"APP_STATUS_{name}")
