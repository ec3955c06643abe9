"""Retention on a real engine: which images a prune keeps, rollback within it, what it never touches.

"The 3 newest plus the serving one": releases are ordered by when they last took traffic, so the
serving release is always the newest of them; after 8 releases with retention 3 exactly the images
of releases 6, 7 and 8 remain (8 serves), and after a rollback to 6 still those three (6 serves).
"""

from __future__ import annotations

import io
import tarfile

import docker
import pytest
from tugboat.v1 import tugboat_pb2 as pb

from agent.prune_settings import PruneSettings
from common.phases import Phase
from tests.conftest import agent_config, start_agent
from tests.support.agent_calls import build, deploy, http_get, wait_until
from tests.support.sample_app import BUSYBOX, commit_version, make_sample_repo

pytestmark = pytest.mark.docker

MANAGED = "io.serversinc.managed"


@pytest.fixture
def quiet_agent(agent_home, docker_client):
    """An agent that prunes only when asked (no schedule, none after deploys): counts are exact."""
    config = agent_config(agent_home, prune=PruneSettings(interval_seconds=0, after_deploy=False))
    with start_agent(config, docker_client) as running:
        yield running


def _platform_images(docker_client, app) -> set[str]:
    # The low-level list: one call, no inspect per image that a prune may remove meanwhile.
    return {i["Id"] for i in docker_client.api.images(
        filters={"label": [f"{MANAGED}=true", f"io.serversinc.app={app}"]})}


def _release(agent, app, repo, version, deployment_id, retain):
    sha = commit_version(repo, version)
    built = build(agent.stub, app, repo, sha, deployment_id)[-1]
    assert built.error == "", built.error
    last = deploy(agent.stub, app, sha, deployment_id, retain_releases=retain)[-1]
    assert last.phase is Phase.DONE, (last.failure, last.error)
    return sha, built.result.image_id, last.url


def _unrelated_image(docker_client, tag: str) -> str:
    """An image the platform did not make (no labels), in the app's own repository name."""
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        tar.add(str(BUSYBOX), arcname="busybox")
        dockerfile = b'FROM scratch\nCOPY busybox /bin/busybox\nCMD ["/bin/busybox","true"]\n'
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    context.seek(0)
    image, _ = docker_client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True)
    return image.id


def _prune(agent, app="", dry_run=False) -> pb.PruneResponse:
    return agent.stub.Prune(pb.PruneRequest(app=app, dry_run=dry_run), timeout=120)


def test_eight_releases_with_retention_three(quiet_agent, app_name, docker_client, tmp_path):
    agent = quiet_agent
    repo = make_sample_repo(tmp_path / "repo", "v0")
    unrelated = _unrelated_image(docker_client, f"{app_name}:mine")
    releases = [_release(agent, app_name, repo, f"v{i}", 100 + i, 3) for i in range(1, 9)]
    ids = [image_id for _, image_id, _ in releases]
    assert len(set(ids)) == 8 and _platform_images(docker_client, app_name) == set(ids)

    # A dry run lists the five oldest images and removes nothing.
    dry = _prune(agent, app_name, dry_run=True)
    assert dry.dry_run
    assert {i.id for i in dry.items if i.kind == pb.PRUNE_ITEM_KIND_IMAGE} == set(ids[:5])
    assert {i.deployment_id for i in dry.items} == {101, 102, 103, 104, 105}
    assert all("older than the last 3 releases" in i.reason for i in dry.items)
    assert _platform_images(docker_client, app_name) == set(ids)

    done = _prune(agent, app_name)
    assert {i.id for i in done.items} == set(ids[:5])
    assert _platform_images(docker_client, app_name) == set(ids[5:])
    assert docker_client.images.get(unrelated).id == unrelated  # untouched, though named <app>:mine
    listed = agent.stub.ListImages(pb.ListImagesRequest(app=app_name), timeout=10)
    assert listed.retain_releases == 3
    assert {(i.id, i.retained) for i in listed.images} == {(i, True) for i in ids[5:]}

    # A rollback to the oldest retained release (6) works, by image id, and serves it again.
    sha6, image6, _ = releases[5]
    last = deploy(agent.stub, app_name, sha6, 200, image=image6, retain_releases=3)[-1]
    assert last.phase is Phase.DONE, (last.failure, last.error)
    assert http_get(last.url)[1] == "<html><body>sample app v6</body></html>\n"
    assert list(_prune(agent, app_name).items) == []  # 6 serves and is the newest: still 6, 7, 8
    assert _platform_images(docker_client, app_name) == set(ids[5:])
    [six] = [i for i in agent.stub.ListImages(pb.ListImagesRequest(app=app_name)).images
             if i.id == image6]
    assert list(six.deployment_ids) == [200, 106]

    # A rollback past retention finds no image: the agent refuses, the serving release stays.
    sha5, image5, _ = releases[4]
    failed = deploy(agent.stub, app_name, sha5, 201, image=image5, retain_releases=3)[-1]
    assert failed.failure == pb.FAILURE_KIND_START and "not found" in failed.error
    assert http_get(last.url)[1] == "<html><body>sample app v6</body></html>\n"
    assert docker_client.images.get(unrelated).id == unrelated


def test_prune_keeps_a_build_for_a_deploy_to_come(quiet_agent, app_name, docker_client, tmp_path):
    """An image a build handed out survives prunes until it takes traffic (or PENDING_BUILD_SECONDS
    pass), also while other releases switch meanwhile: a client may build several versions first,
    then deploy them one after another."""
    agent = quiet_agent
    repo = make_sample_repo(tmp_path / "repo", "v0")
    _, first, _ = _release(agent, app_name, repo, "v1", 1, 1)
    pending_sha = commit_version(repo, "v2")
    pending = build(agent.stub, app_name, repo, pending_sha, 2)[-1].result.image_id
    assert list(_prune(agent, app_name).items) == []
    assert _platform_images(docker_client, app_name) == {first, pending}
    _, third, _ = _release(agent, app_name, repo, "v3", 3, 1)
    removed = _prune(agent, app_name)
    assert {(i.id, i.reason.split(":")[0]) for i in removed.items} == {(first, "older than the last 1 releases")}
    assert _platform_images(docker_client, app_name) == {pending, third}
    # Its deploy comes after all: it serves.
    last = deploy(agent.stub, app_name, pending_sha, 4, retain_releases=1, drain_seconds=1)[-1]
    assert last.phase is Phase.DONE, (last.failure, last.error)


def test_agent_prunes_after_each_deploy(agent, app_name, docker_client, tmp_path):
    """The default agent prunes the app by itself once a deploy is done."""
    repo = make_sample_repo(tmp_path / "repo", "v0")
    ids = [_release(agent, app_name, repo, f"v{i}", i, 2)[1] for i in range(1, 4)]
    assert wait_until(lambda: _platform_images(docker_client, app_name) == set(ids[1:]), timeout=60)


def test_an_app_never_released_here_is_left_alone(quiet_agent, app_name, docker_client, tmp_path):
    """Images of an app this agent never released (another agent's, on a shared engine) stay."""
    repo = make_sample_repo(tmp_path / "repo", "v0")
    sha = commit_version(repo, "v1")
    image = build(quiet_agent.stub, app_name, repo, sha, 1)[-1].result.image_id
    report = _prune(quiet_agent, app_name)
    assert list(report.items) == [] and [s.app for s in report.skipped] == [app_name]
    assert docker_client.images.get(image).id == image
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(f"{app_name}:nothing")


def test_bad_input_is_refused_and_changes_nothing(quiet_agent):
    import grpc

    for call, request in ((quiet_agent.stub.Prune, pb.PruneRequest(app="Not An App")),
                          (quiet_agent.stub.ListImages, pb.ListImagesRequest(app=""))):
        with pytest.raises(grpc.RpcError) as refused:
            call(request, timeout=10)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT

