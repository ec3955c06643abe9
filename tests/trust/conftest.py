"""Fixtures for the trust tests: agents over real mutual TLS, handler-call counting, a deployed
app whose Docker state must not change when a call is refused, and minted bad certificates."""

from __future__ import annotations

import datetime as dt
import inspect
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from agent.servicer import TugboatServicer
from scripts.certs import CLIENT, Pair, load_pair, make_ca, make_leaf
from tests.conftest import agent_config, cleanup_app, start_agent
from common.phases import Phase
from tests.support.agent_calls import build, deploy
from tests.support.sample_app import make_sample_repo

METHODS = ("Build", "Deploy", "Cancel", "ListContainers", "StreamLogs", "StopApp", "RemoveApp",
           "GetInfo")


def count_handler_calls(monkeypatch) -> Counter:
    """Wrap every TugboatServicer method (before an agent is built) to count real handler runs."""
    calls: Counter = Counter()

    def wrap(name):
        # Keep the handler's kind: the aio server runs coroutines and async generators on its loop
        # and plain functions in its pool, and tells them apart by their function type.
        original = getattr(TugboatServicer, name)
        if inspect.isasyncgenfunction(original):
            async def counted(self, request, context):
                calls[name] += 1
                async for item in original(self, request, context):
                    yield item
        elif inspect.iscoroutinefunction(original):
            async def counted(self, request, context):
                calls[name] += 1
                return await original(self, request, context)
        else:
            def counted(self, request, context):
                calls[name] += 1
                return original(self, request, context)
        return counted

    for name in METHODS:
        monkeypatch.setattr(TugboatServicer, name, wrap(name))
    return calls


@dataclass
class DockerState:
    """What the agent manages for one app: containers (id, status) and image ids."""

    containers: list = field(default_factory=list)
    images: list = field(default_factory=list)

    @classmethod
    def read(cls, client, app: str) -> "DockerState":
        containers = sorted((c.id, c.status) for c in client.containers.list(
            all=True, filters={"label": f"io.serversinc.app={app}"}))
        images = sorted(i.id for i in client.images.list(name=app))
        return cls(containers, images)


@dataclass
class Deployed:
    """An agent (started with counting handlers) serving one built and deployed app."""

    agent: object
    app: str
    sha: str
    calls: Counter
    docker_client: object
    next_id: int = 100

    def state(self) -> DockerState:
        return DockerState.read(self.docker_client, self.app)

    def deployment_id(self) -> int:
        self.next_id += 1
        return self.next_id


def deploy_sample(agent, app: str, tmp: Path) -> str:
    repo = make_sample_repo(tmp / f"repo-{app}", "v1")
    sha = repo.head.commit.hexsha
    last = build(agent.stub, app, repo, sha, 1)[-1]
    assert last.error == "", last.error
    done = deploy(agent.stub, app, sha, 2)[-1]
    assert done.phase is Phase.DONE and not done.failure, (done.failure, done.error)
    return sha


@pytest.fixture(scope="module")
def deployed(tmp_path_factory, docker_client):
    """One TLS agent (direct router) with a running app, shared by a module's refusal cases."""
    app = f"t-{uuid.uuid4().hex[:8]}"
    tmp = tmp_path_factory.mktemp("trust")
    (tmp / "home").mkdir()
    with pytest.MonkeyPatch.context() as mp:
        calls = count_handler_calls(mp)
        try:
            with start_agent(agent_config(tmp / "home", router="direct"), docker_client) as agent:
                sha = deploy_sample(agent, app, tmp)
                yield Deployed(agent, app, sha, calls, docker_client)
        finally:
            cleanup_app(docker_client, app)


@pytest.fixture(scope="module")
def other_agent(tmp_path_factory, docker_client):
    """A second server's agent (same CA, its own secret)."""
    home = tmp_path_factory.mktemp("other") / "home"
    home.mkdir()
    with start_agent(agent_config(home, router="direct"), docker_client) as agent:
        yield agent


@dataclass(frozen=True)
class BadCerts:
    ca: bytes                # the right CA, for verifying the agent
    foreign: Pair            # a client pair from another CA
    expired: Pair            # the right CA, not valid any more
    not_yet_valid: Pair      # the right CA, valid only from tomorrow
    server_only: Pair        # the right CA, but a server (serverAuth) certificate


@pytest.fixture(scope="session")
def bad_certs(agent_certs) -> BadCerts:
    ca = load_pair(agent_certs, "ca")
    now = dt.datetime.now(dt.timezone.utc)
    other_ca = make_ca("Some other CA")
    return BadCerts(
        ca=ca.cert_pem,
        foreign=make_leaf(other_ca, "serversinc-control-plane", usage=CLIENT),
        expired=make_leaf(ca, "serversinc-control-plane", usage=CLIENT,
                          not_before=now - dt.timedelta(days=30), not_after=now - dt.timedelta(days=1)),
        not_yet_valid=make_leaf(ca, "serversinc-control-plane", usage=CLIENT,
                                not_before=now + dt.timedelta(days=1),
                                not_after=now + dt.timedelta(days=30)),
        server_only=load_pair(agent_certs, "agent"),
    )


def rpc_code(call) -> grpc.StatusCode:
    """Run `call` (which must fail; materialise streams inside it) and return its status code."""
    try:
        call()
    except grpc.RpcError as err:
        return err.code()
    raise AssertionError("the call succeeded but should have been refused")
