"""Enrollment against the real control plane: CreateServer's one-time join token, traded by the
agent on start for its registration; then the control plane reaches the agent with that secret."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from serversinc.v1 import server_service_pb2 as spb
from serversinc.v1 import server_service_pb2_grpc

from agent import enroll
from services.api.server import run_server as run_api
from services.config import Settings
from services.platform import Platform
from tests.conftest import agent_config, free_port, start_agent
from tests.integration import conftest as integration
from tests.support.api_process import tls_channel

# The integration suite's fixtures (assigned, not imported, so that a test's parameter of the same
# name is not a redefinition of an unused import).
control_plane = integration.control_plane
token_channel = integration.token_channel

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]


def _create(cp, name: str, ttl: int = 0) -> spb.Server:
    server = cp.servers.CreateServer(spb.CreateServerRequest(name=name, address="127.0.0.1:1",
                                                             join_token_ttl=Duration(seconds=ttl)))
    assert server.join_token and not server.registered
    assert server.join_command.startswith(f"TUGBOAT_JOIN_TOKEN={server.join_token} tugboat ")
    assert "--join-token" not in server.join_command  # never in the agent's process arguments
    return server


def _get(cp, name: str) -> spb.Server:
    return cp.servers.GetServer(spb.GetServerRequest(name=name), timeout=10)


def _row(cp, name: str):
    from services.apps import repository as repo

    with cp.platform.db.read() as s:
        return repo.get_server(s, name)


def _logged(caplog) -> str:
    return "\n".join(r.getMessage() for r in caplog.records)


def test_join_registers_then_control_plane_calls_agent_with_the_secret(
        control_plane, tmp_path, docker_client, caplog):
    caplog.set_level(logging.DEBUG)
    created = _create(control_plane, "edge-1")
    home = tmp_path / "edge-1"
    home.mkdir()
    config = agent_config(home, router="direct", secret="",
                          join=control_plane.address, join_token=created.join_token)
    with start_agent(config, docker_client) as agent:
        server = _get(control_plane, "edge-1")
        assert server.registered and server.address == agent.address
        assert server.state == spb.SERVER_STATE_ONLINE, server.error
        assert server.docker_version and server.agent_version
        # The secret it handed over is the one it generated into its .env.
        stored = control_plane.platform.servers.agent_secret(_row(control_plane, "edge-1"))
        assert stored == agent.secret and f"TUGBOAT_SECRET_KEY={agent.secret}" in \
            (home / ".env").read_text()
    logs = _logged(caplog)
    assert "registered with the control plane" in logs
    assert created.join_token not in logs and agent.secret not in logs


def test_join_token_works_once(control_plane, tmp_path, docker_client, caplog):
    created = _create(control_plane, "edge-2")
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    first = agent_config(tmp_path / "a", router="direct",
                         join=control_plane.address, join_token=created.join_token)
    with start_agent(first, docker_client) as agent:
        assert _get(control_plane, "edge-2").address == agent.address
        # A second agent with the same token (a leaked token) is refused and changes nothing.
        second = agent_config(tmp_path / "b", router="direct",
                              join=control_plane.address, join_token=created.join_token)
        with start_agent(second, docker_client) as intruder:
            server = _get(control_plane, "edge-2")
            assert server.address == agent.address and server.address != intruder.address
            assert server.state == spb.SERVER_STATE_ONLINE, server.error
        assert "already registered or the token is stale" in _logged(caplog)
        # And straight through the API, without any API token.
        with tls_channel(control_plane.address, control_plane.platform.settings.certs_dir) as channel:
            with pytest.raises(grpc.RpcError) as refused:
                server_service_pb2_grpc.ServerServiceStub(channel).RegisterServer(
                    spb.RegisterServerRequest(join_token=created.join_token,
                                              agent_secret="x" * 48), timeout=10)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert control_plane.platform.servers.agent_secret(_row(control_plane, "edge-2")) == agent.secret


def test_expired_join_token_is_refused(control_plane, tmp_path, docker_client, caplog):
    created = _create(control_plane, "edge-3", ttl=1)
    time.sleep(1.5)
    (tmp_path / "a").mkdir()
    config = agent_config(tmp_path / "a", router="direct",
                          join=control_plane.address, join_token=created.join_token)
    with start_agent(config, docker_client):
        server = _get(control_plane, "edge-3")
        assert not server.registered and server.address == "127.0.0.1:1"
    logs = _logged(caplog)
    assert "already registered or the token is stale" in logs
    assert created.join_token not in logs


def test_unreachable_control_plane_is_logged_and_agent_keeps_serving(tmp_path, caplog):
    dead = f"127.0.0.1:{free_port()}"
    outcome = enroll.register(dead, "join_token_value", "s" * 48, "127.0.0.1:9", retry_seconds=1.0)
    assert outcome is enroll.Outcome.FAILED
    assert "join_token_value" not in _logged(caplog) and "s" * 48 not in _logged(caplog)


def test_advertised_address():
    assert enroll.advertised_address("10.0.0.5", 50052) == "10.0.0.5:50052"
    assert enroll.advertised_address("0.0.0.0", 50052) == ""
    assert enroll.advertised_address("::1", 5) == "[::1]:5"


# ---- both sides over mutual TLS, the agent started by its console script ---------------------
@pytest.fixture
def tls_control_plane(tmp_path, agent_certs, monkeypatch):
    """A real control plane that talks to agents over mutual TLS (certificates in its home)."""
    home = tmp_path / "cp-tls"
    shutil.copytree(agent_certs, home / "certs")
    settings = Settings.from_env(home=home, database_url=f"sqlite:///{home / 'db.sqlite'}")
    settings.agent_tls = True
    platform = Platform(settings)
    with run_api(platform, port=0) as (_, port):
        address = f"127.0.0.1:{port}"
        token = (home / "api-token").read_text().strip()
        channel = token_channel(address, token)
        yield address, platform, server_service_pb2_grpc.ServerServiceStub(channel)
        channel.close()


def test_join_command_over_mutual_tls(tls_control_plane, tmp_path, agent_certs):
    address, platform, servers = tls_control_plane
    created = servers.CreateServer(spb.CreateServerRequest(name="edge-tls", address="127.0.0.1:1"))
    token_file = tmp_path / "join-token"
    token_file.write_text(created.join_token + "\n")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUGBOAT_")}
    env["TUGBOAT_CERTS"] = str(agent_certs)
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.main", "--listen", f"127.0.0.1:{port}", "--join", address,
         "--join-token-file", str(token_file), "--home", str(tmp_path / "agent"), "--router", "direct"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = []
    try:
        for line in proc.stdout:
            output.append(line)
            if line.startswith("tugboat listening"):
                break
        text = "".join(output)
        assert "mutual TLS" in text and "registered with the control plane" in text, text
        server = servers.GetServer(spb.GetServerRequest(name="edge-tls"), timeout=10)
        assert server.registered and server.address == f"127.0.0.1:{port}"
        assert server.state == spb.SERVER_STATE_ONLINE, server.error
    finally:
        proc.terminate()
        rest, _ = proc.communicate(timeout=30)
    secret = (tmp_path / "agent" / ".env").read_text().split("TUGBOAT_SECRET_KEY=", 1)[1].strip()
    assert created.join_token not in text + rest and secret not in text + rest


def test_insecure_agent_says_so_loudly(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUGBOAT_")}
    env["TUGBOAT_INSECURE"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.main", "--listen", f"127.0.0.1:{free_port()}",
         "--home", str(tmp_path / "agent"), "--router", "direct"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = []
    try:
        for line in proc.stdout:
            output.append(line)
            if line.startswith("tugboat listening"):
                break
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    text = "".join(output)
    assert "WARNING" in text and "INSECURE" in text and "PLAINTEXT" in text, text
