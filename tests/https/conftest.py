"""HTTPS front door tests: a real agent (in-process), its real HAProxy, real pebble, real Docker.

`https_stack` starts pebble with HTTP-01 checked on the agent's front door port, then the agent
with an HTTPS front door on a port of its own and pebble as its ACME directory. Tests talk to
127.0.0.1 only, with the domain as SNI and Host, verifying against pebble's root.
"""

from __future__ import annotations

import http.client
from dataclasses import dataclass

import git
import pytest
from tugboat.v1 import tugboat_pb2 as pb

from tests.conftest import agent_config, free_port, start_agent
from tests.support import pebble as pebble_support
from tests.support.agent_calls import build, deploy_request, deploy_seen, wait_until
from tests.support.sample_app import make_sample_repo
from tests.support.https_client import (  # noqa: F401 - re-exported for the tests
    HttpsKeepAliveClient, PinnedHTTPS, https_context, served_cert)
# The control plane of tests/integration, on this directory's agent (below).
from tests.integration.conftest import control_plane, control_plane_cli  # noqa: F401 - fixtures
from tests.dashboard.conftest import dashboard, fresh_client_cache  # noqa: F401 - fixtures

if not pebble_support.available():  # pragma: no cover - environment problem
    pytest.skip("pebble is not installed (scripts/lib/setup.sh installs it)", allow_module_level=True)


@dataclass
class HttpsStack:
    agent: object
    pebble: pebble_support.Pebble
    http_port: int
    https_port: int

    def certificates(self, app: str = "") -> list[pb.Certificate]:
        return list(self.agent.stub.ListCertificates(pb.ListCertificatesRequest(app=app)).certificates)

    def certificate(self, domain: str) -> pb.Certificate | None:
        return next((c for c in self.certificates() if c.domain == domain), None)

    def wait_state(self, domain: str, state: int, timeout: float = 60) -> pb.Certificate:
        assert wait_until(lambda: (c := self.certificate(domain)) is not None and c.state == state,
                          timeout=timeout, interval=0.1), self.certificate(domain)
        return self.certificate(domain)


def https_get(port: int, domain: str, root_pem: bytes, path: str = "/") -> tuple[int, dict, str]:
    """GET https://<domain>:<port><path> over 127.0.0.1, verified against `root_pem`."""
    conn = PinnedHTTPS(port, domain, https_context(root_pem))
    try:
        conn.request("GET", path, headers={"Host": f"{domain}:{port}"})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        conn.close()


def http_get(port: int, host: str, path: str = "/") -> tuple[int, dict, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers={"Host": f"{host}:{port}"})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        conn.close()


@pytest.fixture
def pebble_validity():
    """Certificate lifetime in seconds pebble issues with (0: its default); override per test."""
    return 0


@pytest.fixture
def https_stack(tmp_path, agent_home, docker_client, pebble_validity, monkeypatch):
    monkeypatch.setenv("TUGBOAT_ACME_RETRY_SECONDS", "2")
    http_port, https_port = free_port(), free_port()
    with pebble_support.run_pebble(tmp_path / "pebble", http_port,
                                   validity=pebble_validity) as pebble:
        config = agent_config(agent_home, front_door_port=http_port, https_port=https_port,
                              acme_directory=pebble.directory,
                              acme_ca_bundle=str(pebble.ca_bundle))
        with start_agent(config, docker_client) as agent:
            yield HttpsStack(agent, pebble, http_port, https_port)


class SampleApp:
    """The busybox sample app, built once, deployed with domains and HTTPS settings."""

    def __init__(self, stack: HttpsStack, app: str, tmp_path) -> None:
        self.stack, self.app = stack, app
        self.repo: git.Repo = make_sample_repo(tmp_path / f"repo-{app}", "v1")
        self.sha = self.repo.head.commit.hexsha
        self.next_id = 100
        last = build(stack.agent.stub, app, self.repo, self.sha, self.next_id)[-1]
        assert last.error == "", last.error

    def deploy(self, domains, **fields):
        self.next_id += 1
        request = deploy_request(self.app, self.sha, self.next_id, domains=list(domains), **fields)
        events = [deploy_seen(ev) for ev in self.stack.agent.stub.Deploy(request, timeout=120)]
        assert not events[-1].failure, events[-1].error
        return events


@pytest.fixture
def sample(https_stack, app_name, tmp_path):
    return SampleApp(https_stack, app_name, tmp_path)


@pytest.fixture
def agent(https_stack):
    """The control plane's agent (tests/integration's `control_plane`) is the HTTPS stack's."""
    return https_stack.agent


@pytest.fixture
def database_url(tmp_path):
    """SQLite for the control plane here (the relay's SQL is plain; tests/integration runs both)."""
    return f"sqlite:///{tmp_path / 'cp' / 'db.sqlite'}"
