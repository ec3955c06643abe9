"""The control-plane API refuses calls without a live API token; enrollment needs a join token."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from grpc_health.v1 import health_pb2, health_pb2_grpc
from serversinc.v1 import (
    api_token_service_pb2,
    api_token_service_pb2_grpc,
    app_service_pb2,
    app_service_pb2_grpc,
    deployment_service_pb2,
    deployment_service_pb2_grpc,
    server_service_pb2,
    server_service_pb2_grpc,
)

from tests.integration.conftest import token_channel
from tests.support.api_process import tls_channel
from tests.support.postgres import dump_database


def code_of(call, *args, **kw):
    with pytest.raises(grpc.RpcError) as info:
        call(*args, **kw)
    return info.value.code(), info.value.details()


def test_calls_without_a_token_or_with_a_wrong_one_are_refused(control_plane):
    plain = tls_channel(control_plane.address, control_plane.platform.settings.certs_dir)
    wrong = token_channel(control_plane.address, "ssi_not-a-token")
    for channel in (plain, wrong):
        apps = app_service_pb2_grpc.AppServiceStub(channel)
        code, details = code_of(apps.ListApps, app_service_pb2.ListAppsRequest())
        assert code == grpc.StatusCode.UNAUTHENTICATED and "token" in details
        watch = deployment_service_pb2_grpc.DeploymentServiceStub(channel).WatchDeployment(
            deployment_service_pb2.WatchDeploymentRequest(name="deployments/1"))
        code, _ = code_of(list, watch)
        assert code == grpc.StatusCode.UNAUTHENTICATED
    # Health stays open for orchestrators and probes.
    assert health_pb2_grpc.HealthStub(plain).Check(health_pb2.HealthCheckRequest()).status == health_pb2.HealthCheckResponse.SERVING
    # Nothing was created by the refused calls.
    assert list(control_plane.apps.ListApps(app_service_pb2.ListAppsRequest()).apps) == []


def test_a_revoked_token_is_refused_at_once(control_plane, control_plane_cli):
    cli = control_plane_cli(control_plane.address)
    created = cli.json("tokens", "create", "ci", "--json")
    assert created["name"] == "ci" and created["secret"].startswith("ssi_")
    ci = app_service_pb2_grpc.AppServiceStub(token_channel(control_plane.address, created["secret"]))
    ci.ListApps(app_service_pb2.ListAppsRequest())
    names = [t["name"] for t in cli.json("tokens", "list", "--json")]
    assert names == ["admin", "ci"] and all("secret" not in t or not t["secret"] for t in cli.json("tokens", "list", "--json"))
    cli("tokens", "revoke", "ci")
    code, details = code_of(ci.ListApps, app_service_pb2.ListAppsRequest())
    assert code == grpc.StatusCode.UNAUTHENTICATED and "revoked" in details


def test_join_tokens_are_single_use_and_expire(control_plane):
    servers = control_plane.servers
    made = servers.CreateServer(server_service_pb2.CreateServerRequest(name="edge-1", address="127.0.0.1:59999"))
    assert made.join_token.startswith("join_") and f"TUGBOAT_JOIN_TOKEN={made.join_token} " in made.join_command
    # RegisterServer needs no API token, only the join token.
    open_servers = server_service_pb2_grpc.ServerServiceStub(tls_channel(control_plane.address, control_plane.platform.settings.certs_dir))
    secret = "s" * 48
    registered = open_servers.RegisterServer(server_service_pb2.RegisterServerRequest(join_token=made.join_token, agent_secret=secret))
    assert registered.registered and not registered.join_token
    code, details = code_of(open_servers.RegisterServer, server_service_pb2.RegisterServerRequest(
        join_token=made.join_token, agent_secret=secret))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "used or expired" in details
    code, _ = code_of(open_servers.RegisterServer, server_service_pb2.RegisterServerRequest(
        join_token="join_guess", agent_secret=secret))
    assert code == grpc.StatusCode.FAILED_PRECONDITION

    expiring = servers.CreateServer(server_service_pb2.CreateServerRequest(
        name="edge-2", address="127.0.0.1:59998", join_token_ttl=Duration(seconds=1)))
    import time

    time.sleep(1.5)
    code, _ = code_of(open_servers.RegisterServer, server_service_pb2.RegisterServerRequest(
        join_token=expiring.join_token, agent_secret=secret))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    listed = {s.name: s.registered for s in servers.ListServers(server_service_pb2.ListServersRequest()).servers}
    assert listed == {"edge-1": True, "edge-2": False, "local": False}


def test_the_database_holds_no_secret_in_clear(control_plane, sample_url, app_name, tmp_path, docker_client):
    secret_value = "hunter2-very-secret-value"
    control_plane.create_app(app_name, sample_url, secret_env={"DB_PASSWORD": secret_value}, env={"MODE": "prod"})
    shown = control_plane.apps.GetApp(app_service_pb2.GetAppRequest(name=app_name))
    assert dict(shown.secret_env) == {"DB_PASSWORD": "********"} and dict(shown.env) == {"MODE": "prod"}
    hook = control_plane.apps.GetAppWebhook(app_service_pb2.GetAppWebhookRequest(name=app_name))
    made = control_plane.servers.CreateServer(server_service_pb2.CreateServerRequest(name="edge", address="127.0.0.1:1"))
    agent_secret = "agent-secret-" + "x" * 40
    server_service_pb2_grpc.ServerServiceStub(tls_channel(control_plane.address, control_plane.platform.settings.certs_dir)).RegisterServer(
        server_service_pb2.RegisterServerRequest(join_token=made.join_token, agent_secret=agent_secret))
    token = api_token_service_pb2_grpc.ApiTokenServiceStub(control_plane.channel).CreateApiToken(
        api_token_service_pb2.CreateApiTokenRequest(name="dash"))
    dep = control_plane.wait(control_plane.deploy(app_name).name)
    assert dep.state == 3, dep.failure_reason  # SUCCEEDED
    container = docker_client.containers.get(dep.container_id)
    assert f"DB_PASSWORD={secret_value}" in container.attrs["Config"]["Env"]  # the app gets its secret...
    assert secret_value not in str(container.labels)  # ...and no label carries it
    events = "\n".join(e.message for e in control_plane.events(dep.name))
    assert secret_value not in events and secret_value not in str(dep)

    control_plane.platform.db.engine.dispose()
    url = control_plane.platform.db.url
    if url.startswith("sqlite"):
        raw = b"".join(p.read_bytes() for p in (tmp_path / "cp").glob("db.sqlite*"))
    else:
        raw = dump_database(url)
    assert app_name.encode() in raw  # the bytes searched do hold the database's rows
    for secret in (secret_value, hook.secret, agent_secret, token.secret, made.join_token):
        assert secret.encode() not in raw, f"{secret[:8]}... found in clear in the database"
