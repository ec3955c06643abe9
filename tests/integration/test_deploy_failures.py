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


def test_a_git_remote_that_never_answers_fails_at_build_and_frees_the_app(control_plane, sample_url, app_name,
                                                                            docker_client):
    from google.protobuf.field_mask_pb2 import FieldMask
    from serversinc.v1 import app_pb2

    from tests.agent.test_hung_remote import SilentServer

    silent = SilentServer()
    try:
        first = deploy_v1(control_plane, app_name, sample_url, build_timeout_seconds=2)
        control_plane.apps.UpdateApp(app_service_pb2.UpdateAppRequest(
            app=app_pb2.App(name=app_name, repo_url=f"git://127.0.0.1:{silent.port}/never.git"),
            update_mask=FieldMask(paths=["repo_url"])))
        # The commit is given, so nothing resolves the branch first: the agent's fetch meets the silence.
        hung = control_plane.wait(control_plane.deploy(app_name, commit_sha="ab" * 20, rebuild=True).name)
        assert hung.state == S.DEPLOYMENT_STATE_FAILED
        assert hung.failure_phase == S.DEPLOYMENT_PHASE_BUILD
        assert "deadline" in hung.failure_reason, hung.failure_reason
        assert silent.accepted, "the agent never reached the silent remote"
        assert_still_serving_v1(control_plane, app_name, first, docker_client)

        # The app's lock is free: the next deploy of it runs (and succeeds from the real remote).
        control_plane.apps.UpdateApp(app_service_pb2.UpdateAppRequest(
            app=app_pb2.App(name=app_name, repo_url=sample_url), update_mask=FieldMask(paths=["repo_url"])))
        again = control_plane.wait(control_plane.deploy(app_name, rebuild=True).name)
        assert again.state == S.DEPLOYMENT_STATE_SUCCEEDED, again.failure_reason
    finally:
        silent.close()


def test_a_changed_dockerfile_rebuilds_and_rollback_runs_the_recorded_image(control_plane, sample_repo, sample_url,
                                                                             app_name, docker_client):
    from google.protobuf.field_mask_pb2 import FieldMask
    from serversinc.v1 import app_pb2, deployment_service_pb2

    commit_files(sample_repo, {"alt.html": "<html><body>alternative build</body></html>\n",
                               "Dockerfile.alt": DOCKERFILE.replace("COPY index.html", "COPY alt.html")},
                 "sample app v1 with another Dockerfile")
    first = deploy_v1(control_plane, app_name, sample_url)
    control_plane.apps.UpdateApp(app_service_pb2.UpdateAppRequest(
        app=app_pb2.App(name=app_name, dockerfile="Dockerfile.alt"), update_mask=FieldMask(paths=["dockerfile"])))
    alt = control_plane.wait(control_plane.deploy(app_name).name)
    assert alt.state == S.DEPLOYMENT_STATE_SUCCEEDED, alt.failure_reason
    # Same commit, other Dockerfile: built again, and the tag now names the new image.
    assert alt.commit_sha == first.commit_sha and not alt.build_skipped
    assert alt.image_id != first.image_id
    assert "alternative build" in fetch(alt.url)
    assert docker_client.images.get(f"{app_name}:{first.commit_sha}").id == alt.image_id

    back = control_plane.wait(control_plane.deployments.RollbackApp(
        deployment_service_pb2.RollbackAppRequest(name=f"apps/{app_name}", deployment=first.name)).name)
    assert back.state == S.DEPLOYMENT_STATE_SUCCEEDED, back.failure_reason
    assert back.image_id == first.image_id
    assert "sample app v1" in fetch(back.url)
    serving = docker_client.containers.get(back.container_id)
    assert serving.image.id == first.image_id
