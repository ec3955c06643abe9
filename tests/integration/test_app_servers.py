"""An app on several servers through the real API and the `serversinc` console script: its servers
and replicas stored and shown, bad ones refused with the right status, and a move of a serving
app queuing the deploy of its serving commit."""

from __future__ import annotations

import json

import grpc
import pytest
from google.protobuf import field_mask_pb2
from serversinc.v1 import app_pb2, app_service_pb2, deployment_pb2, deployment_service_pb2
from serversinc.v1 import server_service_pb2 as spb

from client.errors import error_info
from services.db.models import Deployment

# What is tested is the API's and the CLI's handling of servers and replicas; the database does
# not change it (SQLite only: suite time).
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def cli(control_plane, control_plane_cli):
    return control_plane_cli(control_plane.address)


def add_servers(control_plane, *names):
    """Servers that are registered but never reached (nothing listens on port 1)."""
    for name in names:
        control_plane.servers.CreateServer(spb.CreateServerRequest(name=name, address="127.0.0.1:1"))


def update(control_plane, app: app_pb2.App, *paths):
    return control_plane.apps.UpdateApp(app_service_pb2.UpdateAppRequest(
        app=app, update_mask=field_mask_pb2.FieldMask(paths=list(paths))))


def refused(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def deployments_of(control_plane, app):
    return list(control_plane.deployments.ListDeployments(
        deployment_service_pb2.ListDeploymentsRequest(parent=f"apps/{app}")).deployments)


def test_servers_and_replicas_are_stored_shown_and_changed(control_plane, cli, sample_url):
    add_servers(control_plane, "a", "b")
    created = cli.json("apps", "create", "web", "--repo", sample_url, "--servers", "a,b", "--replicas", "5", "--json")
    assert (created["server"], created["servers"], created["replicas"]) == ("a", ["a", "b"], 5)
    assert created["name"] == "web" and created["repo_url"] == sample_url  # the existing fields stay

    shown = cli("apps", "show", "web").stdout
    assert "a, b (rollout order)" in shown and "5 (3 on a, 2 on b)" in shown

    # Default replicas: one per server.
    assert cli.json("apps", "create", "api", "--repo", sample_url, "--servers", "b,a", "--json")["replicas"] == 2

    moved = cli.json("apps", "update", "web", "--servers", "b,a", "--replicas", "2", "--json")
    assert (moved["server"], moved["servers"], moved["replicas"]) == ("b", ["b", "a"], 2)
    # `server` alone, as before apps had several: that one server only.
    one = update(control_plane, app_pb2.App(name="web", server="a"), "server")
    assert (one.server, list(one.servers), one.replicas) == ("a", ["a"], 2)
    listed = {a.name: list(a.servers) for a in control_plane.apps.ListApps(app_service_pb2.ListAppsRequest()).apps}
    assert listed == {"api": ["b", "a"], "web": ["a"]}
    # Nothing served, so nothing was deployed to move it.
    assert deployments_of(control_plane, "web") == []

    done = cli("apps", "update", "web", "--servers", "a,b", "--replicas", "1", check=False)
    assert done.returncode == 1 and "1 replica cannot cover 2 servers" in done.stderr, done.stderr
    done = cli("apps", "update", "web", "--servers", "a,,b", check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr


@pytest.mark.parametrize("fields,code,says", [
    ({"servers": ["a", "nowhere"], "replicas": 2}, grpc.StatusCode.NOT_FOUND, "'nowhere' is not registered"),
    ({"servers": ["a", "b", "a"], "replicas": 3}, grpc.StatusCode.INVALID_ARGUMENT, "'a' is named twice"),
    ({"servers": ["a", "b"], "replicas": 65}, grpc.StatusCode.INVALID_ARGUMENT, "replicas must be 1 to 64"),
    ({"servers": ["a", "b"], "replicas": 1}, grpc.StatusCode.INVALID_ARGUMENT, "1 replica cannot cover 2 servers"),
    ({"server": "b", "servers": ["a", "b"], "replicas": 2}, grpc.StatusCode.INVALID_ARGUMENT, "not the first of servers"),
])
def test_bad_servers_or_replicas_are_refused_with_the_right_status(control_plane, sample_url, fields, code, says):
    add_servers(control_plane, "a", "b")
    error = refused(lambda: control_plane.create_app("web", sample_url, **fields))
    assert error.code() == code and says in error.details(), error.details()
    assert refused(lambda: control_plane.apps.GetApp(app_service_pb2.GetAppRequest(name="web"))).code() == \
        grpc.StatusCode.NOT_FOUND

    control_plane.create_app("web", sample_url, servers=["a"])
    paths = [p for p in ("server", "servers", "replicas") if p in fields]
    error = refused(lambda: update(control_plane, app_pb2.App(name="web", **fields), *paths))
    assert error.code() == code and says in error.details(), error.details()
    kept = control_plane.apps.GetApp(app_service_pb2.GetAppRequest(name="web"))
    assert (list(kept.servers), kept.replicas) == (["a"], 1)


def test_moving_a_serving_app_queues_the_deploy_of_its_serving_commit(control_plane, cli, sample_repo, sample_url):
    control_plane.create_app("web", sample_url, port=8080, health_path="/")
    serving = control_plane.wait(control_plane.deploy("web").name)
    assert serving.state == deployment_pb2.DEPLOYMENT_STATE_SUCCEEDED
    # As a deployment recorded before the control plane kept each server's outcome (migration 0013).
    with control_plane.platform.db.session() as s:
        s.get(Deployment, serving.id).server_outcomes = []
    add_servers(control_plane, "far")

    said = cli("apps", "update", "web", "--server", "far").stdout
    assert "moving it to far" in said, said

    moves = [d for d in deployments_of(control_plane, "web") if d.trigger == deployment_pb2.DEPLOYMENT_TRIGGER_MOVE]
    assert len(moves) == 1
    move = moves[0]
    assert (move.requested_commit_sha, move.rebuild) == (sample_repo.head.commit.hexsha, False)
    assert move.id > serving.id
    # Before the app's server changed, the legacy serving deployment said where it runs.
    before = control_plane.get(serving.name)
    assert [(o.server, o.state) for o in before.server_outcomes] == [
        ("local", deployment_pb2.SERVER_OUTCOME_STATE_SUCCEEDED)]
    shown = cli("deployments", "show", str(serving.id)).stdout
    assert "server local" in shown and "succeeded" in shown
    with control_plane.platform.db.read() as s:
        assert s.get(Deployment, serving.id).server_outcomes[0]["server"] == "local"

    # The move runs as any deploy: it cannot reach "far", and its record says so; what serves
    # on "local" was not touched by the failed attempt.
    ended = control_plane.wait(move.name)
    assert ended.state == deployment_pb2.DEPLOYMENT_STATE_FAILED, ended
    app = control_plane.apps.GetApp(app_service_pb2.GetAppRequest(name="web"))
    assert (app.server, list(app.servers), app.current_deployment) == ("far", ["far"], serving.name)

    # Changing only the order or the replicas is no move.
    update(control_plane, app_pb2.App(name="web", replicas=2), "replicas")
    assert len(deployments_of(control_plane, "web")) == 2


def test_error_details_name_the_missing_server(control_plane, sample_url):
    error = refused(lambda: control_plane.create_app("web", sample_url, servers=["gone", "away"], replicas=2))
    info = error_info(error)
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert info.reason == "SERVER_NOT_FOUND" and info.metadata["servers"] == "gone,away"


def test_a_server_an_app_runs_on_is_not_deleted(control_plane, cli, sample_url):
    add_servers(control_plane, "a", "b", "spare")
    control_plane.create_app("web", sample_url, servers=["a", "b"], replicas=2)
    control_plane.create_app("api", sample_url, servers=["b"])

    error = refused(lambda: control_plane.servers.DeleteServer(spb.DeleteServerRequest(name="b")))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "still runs api, web" in error.details(), error.details()
    info = error_info(error)
    assert info.reason == "SERVER_IN_USE" and info.metadata["apps"] == "api,web"
    done = cli("servers", "delete", "a", check=False)
    assert done.returncode == 1 and "still runs web" in done.stderr, done.stderr

    cli("servers", "delete", "spare")
    update(control_plane, app_pb2.App(name="web", servers=["a"]), "servers")
    assert "still runs api:" in cli("servers", "delete", "b", check=False).stderr
    update(control_plane, app_pb2.App(name="api", server="a"), "server")
    control_plane.servers.DeleteServer(spb.DeleteServerRequest(name="b"))
    names = [s.name for s in control_plane.servers.ListServers(spb.ListServersRequest()).servers]
    assert "b" not in names and "spare" not in names and "a" in names
