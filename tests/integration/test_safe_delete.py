"""`apps delete` checks before it removes, and removes only what is labelled as the app's."""

from __future__ import annotations

import shutil

import docker
import grpc
import pytest
from serversinc.v1 import app_service_pb2, deployment_pb2, deployment_service_pb2

from tests.integration.conftest import fetch
from tests.integration.test_error_reasons import refusal
from tests.support.sample_app import BUSYBOX, DOCKERFILE, commit_files, slow_step

S = deployment_pb2



def slow_build() -> str:
    return DOCKERFILE.replace("EXPOSE 8080", slow_step(30) + "EXPOSE 8080")


def _delete(cp, name):
    return cp.apps.DeleteApp(app_service_pb2.DeleteAppRequest(name=f"apps/{name}"))


def _wait_for_log(cp, name, prefix):
    """Follow the deployment's events until a log line starts with `prefix`."""
    call = cp.deployments.WatchDeployment(deployment_service_pb2.WatchDeploymentRequest(name=name), timeout=60)
    try:
        for event in call:
            if event.kind == S.EVENT_KIND_LOG and event.message.startswith(prefix):
                return
    finally:
        call.cancel()
    raise AssertionError(f"{name} ended without a log line starting {prefix!r}")


def test_delete_during_a_build_is_refused_and_the_old_release_serves(control_plane, sample_repo, sample_url,
                                                                      app_name, docker_client):
    control_plane.create_app(app_name, sample_url)
    first = control_plane.wait(control_plane.deploy(app_name).name)
    assert first.state == S.DEPLOYMENT_STATE_SUCCEEDED, first.failure_reason
    commit_files(sample_repo, {"Dockerfile": slow_build()}, "slow build")
    building = control_plane.deploy(app_name)
    _wait_for_log(control_plane, building.name, " ---> Running in ")

    code, info, _ = refusal(_delete, control_plane, app_name)
    assert (code, info.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "DEPLOYMENT_IN_PROGRESS")
    # Nothing was removed: v1 still serves through the front door, the build goes on.
    assert "sample app v1" in fetch(first.url)
    assert [c.id for c in docker_client.containers.list(
        filters={"label": f"io.serversinc.app={app_name}"})] == [first.container_id]
    assert docker_client.images.get(f"{app_name}:{first.commit_sha}")
    assert control_plane.get(building.name).state == S.DEPLOYMENT_STATE_RUNNING

    control_plane.deployments.CancelDeployment(deployment_service_pb2.CancelDeploymentRequest(name=building.name))
    assert control_plane.wait(building.name).state == S.DEPLOYMENT_STATE_CANCELLED
    _delete(control_plane, app_name)
    assert docker_client.containers.list(all=True, filters={"label": f"io.serversinc.app={app_name}"}) == []


@pytest.fixture
def host_busybox(docker_client, tmp_path):
    """The host's own `busybox:latest` (not built by an agent); made here when the host has none."""
    try:
        yield docker_client.images.get("busybox:latest")
        return
    except docker.errors.ImageNotFound:
        pass
    context = tmp_path / "host-image"
    context.mkdir()
    shutil.copyfile(BUSYBOX, context / "busybox")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY busybox /bin/busybox\n")
    image, _ = docker_client.images.build(path=str(context), tag="busybox:latest",
                                          labels={"io.serversinc.test": "host-image"})
    yield image
    try:
        docker_client.images.remove("busybox:latest", force=True)
    except docker.errors.APIError:
        pass


def test_deleting_an_app_named_busybox_leaves_the_hosts_busybox_image(control_plane, sample_url, host_busybox,
                                                                       docker_client):
    try:
        control_plane.create_app("busybox", sample_url)
        dep = control_plane.wait(control_plane.deploy("busybox").name)
        assert dep.state == S.DEPLOYMENT_STATE_SUCCEEDED, dep.failure_reason
        assert docker_client.images.get(f"busybox:{dep.commit_sha}")

        _delete(control_plane, "busybox")
        assert docker_client.images.get("busybox:latest").id == host_busybox.id
        with pytest.raises(docker.errors.ImageNotFound):
            docker_client.images.get(f"busybox:{dep.commit_sha}")
        assert docker_client.containers.list(all=True, filters={"label": "io.serversinc.app=busybox"}) == []
    finally:
        for container in docker_client.containers.list(all=True, filters={"label": "io.serversinc.app=busybox"}):
            container.remove(force=True)
        for image in docker_client.images.list(filters={"label": ["io.serversinc.managed=true",
                                                                  "io.serversinc.app=busybox"]}):
            docker_client.images.remove(image.id, force=True)
