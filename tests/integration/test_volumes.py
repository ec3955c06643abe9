"""Volumes through the control plane and the real CLI: an exclusive-volumes deployment records
how long the app served nothing, and `apps delete` keeps the app's volumes unless asked with
`--delete-volumes` (and says how to delete them later)."""

from __future__ import annotations

import docker
import pytest
from serversinc.v1 import deployment_pb2

from tests.integration.conftest import fetch
from tests.support.sample_app import commit_files

S = deployment_pb2

WRITER = """FROM scratch
COPY busybox /bin/busybox
CMD ["/bin/busybox","sh","-c","echo {version} >> /data/log; exec /bin/busybox httpd -f -p 8080 -h /data"]
"""


@pytest.fixture
def cli(control_plane, control_plane_cli):
    return control_plane_cli(control_plane.address)


@pytest.fixture
def volumes_swept(docker_client, app_name):
    yield
    for volume in docker_client.volumes.list(filters={"name": f"serversinc-{app_name}-"}):
        try:
            volume.remove(force=True)
        except docker.errors.APIError:
            pass


def _create(cli, app, url):
    cli("apps", "create", app, "--repo", url, "--branch", "main", "--port", "8080",
        "--health-path", "/log", "--volume", "data:/data", "--exclusive-volumes")


# What is tested happens on the agent; the database does not change it (SQLite only: suite time).
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_exclusive_deploy_records_unserved_time_and_delete_keeps_volumes_unless_asked(
        control_plane, cli, sample_repo, sample_url, app_name, docker_client, volumes_swept):
    commit_files(sample_repo, {"Dockerfile": WRITER.format(version="v1")}, "writes v1")
    _create(cli, app_name, sample_url)
    first = control_plane.wait(control_plane.deploy(app_name).name)
    assert first.state == S.DEPLOYMENT_STATE_SUCCEEDED, first.failure_reason
    assert first.unserved_seconds == 0  # nothing served before: nothing was stopped

    commit_files(sample_repo, {"Dockerfile": WRITER.format(version="v2")}, "writes v2")
    watched = cli("deploy", app_name, "--watch")
    assert "served nothing for " in watched.stdout, watched.stdout
    second = [d for d in cli.json("deployments", "list", app_name, "--json")][0]
    assert second["state"] == "DEPLOYMENT_STATE_SUCCEEDED"
    assert second["unserved_seconds"] > 0, second
    assert fetch(second["url"] + "/log") == "v1\nv2\n"

    volume = f"serversinc-{app_name}-data"
    deleted = cli("apps", "delete", app_name, "--yes")
    assert f"kept volumes: {volume}" in deleted.stdout, deleted.stdout
    assert f"docker volume rm {volume}" in deleted.stdout
    assert docker_client.volumes.get(volume)

    # The same name again mounts the kept volume; a delete with the flag removes it.
    _create(cli, app_name, sample_url)
    third = control_plane.wait(control_plane.deploy(app_name).name)
    assert third.state == S.DEPLOYMENT_STATE_SUCCEEDED, third.failure_reason
    assert fetch(third.url + "/log") == "v1\nv2\nv2\n"
    deleted = cli("apps", "delete", app_name, "--yes", "--delete-volumes")
    assert f"removed volumes: {volume}" in deleted.stdout, deleted.stdout
    assert "kept volumes" not in deleted.stdout
    with pytest.raises(docker.errors.NotFound):
        docker_client.volumes.get(volume)
