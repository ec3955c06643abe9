"""Retention through the control plane: `serversinc prune`, rollbacks within and past retention,
and event retention of old deployments."""

from __future__ import annotations

import grpc
import pytest
from serversinc.v1 import deployment_pb2 as S
from serversinc.v1 import deployment_service_pb2, server_service_pb2

from agent.prune_settings import PruneSettings
from services.apps import repository as apps_repo
from services.core.states import EventKind, Phase, State
from services.db.models import Deployment, utcnow
from services.retention.events import EventRetention
from tests.conftest import agent_config, start_agent
from tests.integration.conftest import fetch
from tests.support.sample_app import commit_version

MANAGED = "io.serversinc.managed"


@pytest.fixture
def agent(agent_home, docker_client):
    """The control plane's agent prunes only when asked: what a dry run lists stays to be seen."""
    config = agent_config(agent_home, prune=PruneSettings(interval_seconds=0, after_deploy=False))
    with start_agent(config, docker_client) as running:
        yield running


def _images(docker_client, app) -> set[str]:
    # The low-level list: one call, no inspect per image that a prune may remove meanwhile.
    return {i["Id"] for i in docker_client.api.images(
        filters={"label": [f"{MANAGED}=true", f"io.serversinc.app={app}"]})}


def _count(control_plane, app) -> int:
    return len(control_plane.deployments.ListDeployments(deployment_service_pb2.ListDeploymentsRequest(
        parent=f"apps/{app}", page_size=100)).deployments)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_prune_and_rollback_past_retention(control_plane, control_plane_cli, sample_repo, sample_url,
                                           app_name, docker_client):
    cli = control_plane_cli(control_plane.address)
    control_plane.create_app(app_name, sample_url, retain_releases=2)
    releases = [control_plane.wait(control_plane.deploy(app_name).name)]
    for version in ("v2", "v3"):
        commit_version(sample_repo, version)
        releases.append(control_plane.wait(control_plane.deploy(app_name).name))
    assert all(r.state == S.DEPLOYMENT_STATE_SUCCEEDED for r in releases)
    assert _images(docker_client, app_name) == {r.image_id for r in releases}

    dry = cli.json("prune", app_name, "--dry-run", "--json")
    [server] = dry
    assert server["dry_run"] and [i["id"] for i in server["items"]] == [releases[0].image_id]
    assert server["items"][0]["deployment"] == releases[0].name
    assert _images(docker_client, app_name) == {r.image_id for r in releases}  # removed nothing

    shown = cli("prune", app_name)
    assert "removed image" in shown.stdout and "older than the last 2 releases" in shown.stdout
    assert _images(docker_client, app_name) == {r.image_id for r in releases[1:]}
    unknown = cli("prune", "no-such-app", check=False)
    assert unknown.returncode == 1 and "not found" in unknown.stderr
    with pytest.raises(grpc.RpcError) as missing:
        control_plane.servers.PruneServer(server_service_pb2.PruneServerRequest(name="nowhere"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    [everything] = cli.json("prune", "--dry-run", "--json")  # every server: the local one here
    assert everything["server"] == "local" and everything["dry_run"]
    assert [i for i in everything["items"] if i["app"] == app_name] == []

    # Past retention: refused before anything is queued, saying what to do instead.
    before = _count(control_plane, app_name)
    with pytest.raises(grpc.RpcError) as refused:
        control_plane.deployments.RollbackApp(deployment_service_pb2.RollbackAppRequest(
            name=f"apps/{app_name}", deployment=releases[0].name))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert refused.value.details() == (
        f"the image of deployment {releases[0].id} was pruned: only the last 2 releases keep their "
        f"image; deploy commit {releases[0].commit_sha[:12]} again instead")
    assert _count(control_plane, app_name) == before
    assert "sample app v3" in fetch(releases[2].url)

    # The oldest retained release: rolled back to, serving again.
    back = control_plane.wait(control_plane.deployments.RollbackApp(deployment_service_pb2.RollbackAppRequest(
        name=f"apps/{app_name}", deployment=releases[1].name)).name)
    assert back.state == S.DEPLOYMENT_STATE_SUCCEEDED and back.build_skipped
    assert "sample app v2" in fetch(back.url)


def test_event_retention_keeps_the_newest_deployments_events(control_plane, sample_url, app_name):
    platform = control_plane.platform
    control_plane.create_app(app_name, sample_url)
    with platform.db.session() as s:
        app_id = apps_repo.get_app(s, app_name).id
        ids = []
        for n in range(5):
            dep = Deployment(app_id=app_id, state=str(State.SUCCEEDED), phase=str(Phase.DONE), trigger="API",
                             created_at=utcnow(), finished_at=utcnow())
            s.add(dep)
            s.flush()
            ids.append(dep.id)
            platform.events.append(s, dep.id, EventKind.STATE, Phase.QUEUED, "queued (api)",
                                   state=State.QUEUED, seq=1)
            for line in range(3):
                platform.events.append(s, dep.id, EventKind.LOG, Phase.BUILD, f"build line {line} of {n}")
            platform.events.append(s, dep.id, EventKind.STATE, Phase.DONE, "succeeded", state=State.SUCCEEDED)
    retention = EventRetention(platform.db, keep=3, period=0)
    assert retention.sweep() == 2
    assert retention.sweep() == 0  # already pruned: nothing to do

    for old in ids[:2]:
        name = f"apps/{app_name}/deployments/{old}"
        events = control_plane.events(name)  # the watch ends at the kept terminal event
        assert [e.message for e in events][-2:] == [
            "the log of this deployment was pruned: only the last 3 deployments of an app keep their "
            "events (SERVERSINC_EVENT_RETENTION_DEPLOYMENTS)", "succeeded"]
        assert len(events) == 2 and control_plane.get(name).log_pruned
    for kept in ids[2:]:
        name = f"apps/{app_name}/deployments/{kept}"
        assert len(control_plane.events(name)) == 5 and not control_plane.get(name).log_pruned
