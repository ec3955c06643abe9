"""Fixtures for fleet tests: two namespace hosts for the session, and a control plane (SQLite) per
test with both hosts' agents registered as servers "a" and "b" the way an agent registers itself
(CreateServer's join token traded by RegisterServer for the agent's secret and address)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

import pytest
from serversinc.v1 import server_service_pb2

from services.api.server import run_server
from services.config import Settings
from services.platform import Platform
from tests.conftest import cleanup_app
from tests.integration.conftest import ControlPlane, token_channel
from tests.support.hosts import TestHost, make_hosts, missing_requirements


@pytest.fixture(scope="session")
def host_set(agent_certs):
    """Two namespace hosts for the whole session (brought up once: ~4-8 s), removed at its end."""
    why = missing_requirements()
    if why:
        pytest.skip(why)
    with make_hosts(2) as hosts:
        yield hosts


@pytest.fixture(scope="session")
def hosts(host_set) -> list[TestHost]:
    """[host A, host B]: each `.address`, `.agent_address`, `.front_door`, `.docker()`."""
    return host_set.hosts


@pytest.fixture(autouse=True)
def _agents_running(request):
    """A test that stopped an agent and failed midway leaves it running again for the next one."""
    yield
    if "host_set" in request.fixturenames:
        for host in request.getfixturevalue("host_set").hosts:
            host.start_agent()


@dataclass
class Fleet:
    cp: ControlPlane
    hosts: list[TestHost]
    servers: dict[str, TestHost]
    apps: list[str]

    def app(self, name: str, url: str, server: str, **fields):
        """Creates the app on `server` ("a" or "b"); it is removed from its host afterwards."""
        self.apps.append(name)
        return self.cp.create_app(name, url, server=server, **fields)


def register(cp: ControlPlane, name: str, host: TestHost) -> server_service_pb2.Server:
    created = cp.servers.CreateServer(server_service_pb2.CreateServerRequest(name=name, address=host.agent_address))
    return cp.servers.RegisterServer(server_service_pb2.RegisterServerRequest(
        join_token=created.join_token, agent_secret=host.secret, address=host.agent_address))


@pytest.fixture
def fleet(tmp_path, hosts, agent_certs, monkeypatch) -> Fleet:
    """A control plane in the root namespace (SQLite) whose servers "a" and "b" are the hosts'
    agents, reached only over the hosts' addresses. Its built-in "local" server points nowhere."""
    settings = Settings.from_env(home=tmp_path / "cp", database_url=f"sqlite:///{tmp_path / 'cp' / 'db.sqlite'}")
    settings.local_agent_address = "127.0.0.1:1"
    shutil.copytree(agent_certs, settings.home / "certs")
    settings.metrics_address = "127.0.0.1:0"
    platform = Platform(settings)
    fleet = None
    with run_server(platform, port=0) as (_, port):
        address = f"127.0.0.1:{port}"
        token = (settings.home / "api-token").read_text().strip()
        monkeypatch.setenv("SERVERSINC_TOKEN", token)
        channel = token_channel(address, token)
        from serversinc.v1 import (app_service_pb2_grpc, deployment_service_pb2_grpc, git_service_pb2_grpc,
                                   server_service_pb2_grpc)
        cp = ControlPlane(address, platform, channel, app_service_pb2_grpc.AppServiceStub(channel),
                          deployment_service_pb2_grpc.DeploymentServiceStub(channel),
                          git_service_pb2_grpc.GitServiceStub(channel),
                          server_service_pb2_grpc.ServerServiceStub(channel))
        servers = {"a": hosts[0], "b": hosts[1]}
        for name, host in servers.items():
            register(cp, name, host)
        fleet = Fleet(cp, hosts, servers, [])
        try:
            yield fleet
        finally:
            for app in fleet.apps:
                try:
                    platform.delete_app(app)
                except Exception:  # the agent is down or the app was never made: swept below
                    pass
            channel.close()
    for app in fleet.apps:
        for host in hosts:
            with host.docker() as engine:
                cleanup_app(engine, app)
