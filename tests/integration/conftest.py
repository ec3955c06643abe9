"""Fixtures for control-plane tests: a real control plane (gRPC, SQLite or PostgreSQL, workers) driving a real agent."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import grpc
import pytest
import requests
from serversinc.v1 import (
    app_pb2,
    app_service_pb2,
    app_service_pb2_grpc,
    deployment_pb2,
    deployment_service_pb2,
    deployment_service_pb2_grpc,
    git_service_pb2_grpc,
    server_service_pb2_grpc,
)

from client.connection import Connection
from services.api.server import run_server
from services.config import Settings
from services.platform import Platform
from tests.support.sample_app import make_sample_repo, repo_url

TERMINAL = {
    deployment_pb2.DEPLOYMENT_STATE_SUCCEEDED,
    deployment_pb2.DEPLOYMENT_STATE_FAILED,
    deployment_pb2.DEPLOYMENT_STATE_CANCELLED,
    deployment_pb2.DEPLOYMENT_STATE_SUPERSEDED,
}


@dataclass
class ControlPlane:
    address: str
    platform: Platform
    channel: grpc.Channel
    apps: app_service_pb2_grpc.AppServiceStub
    deployments: deployment_service_pb2_grpc.DeploymentServiceStub
    git: git_service_pb2_grpc.GitServiceStub
    servers: server_service_pb2_grpc.ServerServiceStub

    def create_app(self, name: str, url: str, **fields) -> app_pb2.App:
        app = app_pb2.App(name=name, repo_url=url, branch=fields.pop("branch", "main"), **fields)
        return self.apps.CreateApp(app_service_pb2.CreateAppRequest(app=app))

    def deploy(self, app: str, **kw) -> deployment_pb2.Deployment:
        return self.deployments.CreateDeployment(deployment_service_pb2.CreateDeploymentRequest(parent=f"apps/{app}", **kw))

    def get(self, name: str) -> deployment_pb2.Deployment:
        return self.deployments.GetDeployment(deployment_service_pb2.GetDeploymentRequest(name=name))

    def wait(self, name: str, timeout: float = 60) -> deployment_pb2.Deployment:
        """Follows the deployment's event stream until its terminal event, then reads it."""
        events = self.deployments.WatchDeployment(
            deployment_service_pb2.WatchDeploymentRequest(name=name), timeout=timeout
        )
        for _ in events:
            pass
        dep = self.get(name)
        assert dep.state in TERMINAL, dep
        return dep

    def events(self, name: str, after_seq: int = 0) -> list:
        return list(self.deployments.WatchDeployment(
            deployment_service_pb2.WatchDeploymentRequest(name=name, after_seq=after_seq), timeout=30
        ))

    def wait_state(self, name: str, predicate, timeout: float = 30) -> deployment_pb2.Deployment:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dep = self.get(name)
            if predicate(dep):
                return dep
            time.sleep(0.05)
        raise AssertionError(f"{name} did not reach the expected state: {self.get(name)}")


def token_channel(address: str, token: str) -> grpc.Channel:
    """A channel that presents the API token on every call, through the clients' own library."""
    return Connection(address, token, unary_timeout=None).channel


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path):
    """Every control-plane test runs on both databases: SQLite in the test's home (`[sqlite]`) and
    a fresh database on the session's real PostgreSQL server (`[postgres]`)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cp' / 'db.sqlite'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def control_plane(tmp_path, agent, monkeypatch, database_url):
    settings = Settings.from_env(home=tmp_path / "cp", database_url=database_url)
    settings.local_agent_address = agent.address
    # Real mutual TLS and the agent's secret, as in production.
    shutil.copytree(agent.certs_dir, settings.home / "certs")
    settings.local_agent_secret = agent.secret
    settings.metrics_address = "127.0.0.1:0"
    settings.notify_backoff_seconds = 0.2
    platform = Platform(settings)
    with run_server(platform, port=0) as (_, port):
        address = f"127.0.0.1:{port}"
        token = (settings.home / "api-token").read_text().strip()
        # The CLI, dashboard and webhook bridge started by tests find the token like users' do.
        monkeypatch.setenv("SERVERSINC_TOKEN", token)
        channel = token_channel(address, token)
        yield ControlPlane(
            address, platform, channel,
            app_service_pb2_grpc.AppServiceStub(channel),
            deployment_service_pb2_grpc.DeploymentServiceStub(channel),
            git_service_pb2_grpc.GitServiceStub(channel),
            server_service_pb2_grpc.ServerServiceStub(channel),
        )
        channel.close()


@pytest.fixture
def sample_repo(tmp_path):
    return make_sample_repo(tmp_path / "repo", "v1")


@pytest.fixture
def sample_url(sample_repo):
    return repo_url(sample_repo)


def fetch(url: str) -> str:
    """GET an app URL over loopback only. `http://<app>.localhost:PORT` (the front door) does not
    resolve through glibc, so it is sent to 127.0.0.1:PORT with that Host header."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    assert host == "127.0.0.1" or host == "localhost" or host.endswith(".localhost"), url
    target = f"{parts.scheme}://127.0.0.1:{parts.port or 80}{parts.path or '/'}"
    return requests.get(target, headers={"Host": parts.netloc}, timeout=5).text


@pytest.fixture
def control_plane_cli():
    """Runs the real `serversinc` console script against a given control-plane address."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).with_name("serversinc")

    class Cli:
        def __init__(self, address: str, **env: str):
            self.env = {**os.environ, "SERVERSINC_API": address, **env}

        def __call__(self, *args: str, check: bool = True):
            done = subprocess.run([str(exe), *args], capture_output=True, text=True, env=self.env, timeout=120)
            if check:
                assert done.returncode == 0, done.stderr + done.stdout
            return done

        def json(self, *args: str):
            return json.loads(self(*args).stdout)

    return Cli
