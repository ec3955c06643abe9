"""Shared fixtures: a real Docker client, unique app names with cleanup, and an in-process agent
(mutual TLS with session certificates, and a per-agent secret on every call).

An agent starts a detached front door service that outlives it (by design): every front door
whose state lies under a test's tmp_path is stopped after that test, and the whole base temp
is swept once more at the end of the session."""

from __future__ import annotations

import atexit
import functools
import secrets
import shutil
import socket
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import docker
import grpc
import pytest

from agent.config import AgentConfig


def stop_front_doors(root: Path) -> None:
    """Stop the front door service (and its HAProxy) of every agent state dir under `root`
    (depth <= 3: `<root>/<home>/haproxy` or a pointer symlink of that name)."""
    from agent.frontdoor import stop
    from agent.frontdoor_files import FrontDoorFiles

    for pattern in ("haproxy", "*/haproxy", "*/*/haproxy", "*/*/*/haproxy"):
        for entry in Path(root).glob(pattern):
            stop(FrontDoorFiles.for_state(entry.parent))


@pytest.fixture(autouse=True)
def _front_doors_stopped(request):
    # fixturenames is the closure (tmp_path through agent_home & co.); asked for here, tmp_path
    # is torn down after this fixture.
    tmp = request.getfixturevalue("tmp_path") if "tmp_path" in request.fixturenames else None
    yield
    if tmp is not None:
        stop_front_doors(tmp)


@pytest.fixture(scope="session", autouse=True)
def _front_doors_swept(tmp_path_factory):
    yield
    stop_front_doors(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def docker_client():
    client = docker.from_env()
    try:
        client.ping()
    except Exception as exc:  # pragma: no cover - environment problem
        pytest.skip(f"Docker engine not reachable: {exc}")
    yield client
    client.close()


def cleanup_app(client, app: str) -> None:
    """Force-remove every container labelled with `app` and every image `<app>:*` (tests and benchmarks)."""
    for container in client.containers.list(all=True, filters={"label": f"io.serversinc.app={app}"}):
        try:
            container.remove(force=True)
        except docker.errors.APIError:  # gone, or already going away
            pass
    # The low-level list (one call): the high-level one inspects each image, and the agent's
    # after-deploy prune may remove one between the two.
    for image in client.api.images(name=app):
        for tag in image.get("RepoTags") or ():
            if tag.split(":", 1)[0] == app:
                try:
                    client.images.remove(tag, force=True)
                except docker.errors.APIError:  # gone, or already going away
                    pass


@pytest.fixture
def app_name(docker_client):
    """A unique app name (`t-<8 hex>`); its containers and images are removed afterwards."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    yield name
    cleanup_app(docker_client, name)


@pytest.fixture
def make_app_name(docker_client):
    """Factory for extra unique app names in one test; all are cleaned up afterwards."""
    names = []

    def make() -> str:
        names.append(f"t-{uuid.uuid4().hex[:8]}")
        return names[-1]
    yield make
    for name in names:
        cleanup_app(docker_client, name)


@pytest.fixture
def agent_home(tmp_path):
    home = tmp_path / "agent-home"
    home.mkdir()
    return home


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@functools.cache
def session_certs() -> Path:
    """A CA with agent and control-plane certificates (scripts/certs.py), minted once per test
    process into a temporary folder removed at exit."""
    from scripts.certs import ensure_certs

    folder = Path(tempfile.mkdtemp(prefix="tugboat-certs-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    ensure_certs(folder / "certs")
    return folder / "certs"


@pytest.fixture(scope="session", autouse=True)
def _api_ca():
    """Clients in tests (the API's own stubs, CLIs, bridges and dashboards they start) verify the
    control plane with the session CA, the one every test home's certs/ is copied from, as a
    user's clients verify it with .serversinc/certs/ca.pem. A test of another CA, or of the CA
    found in SERVERSINC_HOME, sets or removes SERVERSINC_CA itself."""
    from common.api_tls import CA_ENV, PLAINTEXT_ENV

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CA_ENV, str(session_certs() / "ca.pem"))
        patch.delenv(PLAINTEXT_ENV, raising=False)
        yield


@pytest.fixture(scope="session")
def agent_certs() -> Path:
    """The session's certificate folder (ca.pem, agent*.pem, control-plane*.pem)."""
    return session_certs()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def agent_config(home: Path, *, router: str = "haproxy", front_door_port: int | None = None,
                 secret: str | None = None, certs_dir: Path | None = None, insecure: bool = False,
                 **fields) -> AgentConfig:
    """An agent config for tests: HAProxy front door on a free 127.0.0.1 port by default,
    mutual TLS with the session certificates (unless `insecure`) and a fresh random secret."""
    return AgentConfig(state_dir=home, router=router,
                       front_door_port=front_door_port or free_port(),
                       secret=new_secret() if secret is None else secret,
                       certs_dir=None if insecure else (certs_dir or session_certs()),
                       insecure=insecure, **fields)


@dataclass
class RunningAgent:
    address: str
    stub: object
    config: AgentConfig
    channel: grpc.Channel
    server: grpc.Server
    router: object = None
    # The secret every call must carry (the stub's channel adds it).
    secret: str = ""
    # The certificates folder the agent trusts (None: a plaintext, --insecure agent).
    certs_dir: Path | None = None

    @property
    def front_door(self) -> str:
        """"127.0.0.1:PORT" of the HAProxy front door ("" with the direct router)."""
        return self.config.front_door


def start_agent(config: AgentConfig, docker_client=None):
    """Context manager: run an agent in-process on a free port and yield a RunningAgent whose
    stub speaks to it as the control plane does (its TLS client certificate and the secret)."""
    from contextlib import contextmanager

    from tugboat.v1 import tugboat_pb2_grpc

    from agent.server import make_router, run_server
    from agent.trust import resolve_secret
    from tests.support.agent_client import agent_channel

    @contextmanager
    def _run():
        router = make_router(config)
        with run_server(config, port=0, docker_client=docker_client, router=router) as (server, port):
            address = f"127.0.0.1:{port}"
            secret = resolve_secret(config.secret, config.env_file)
            certs = None if config.insecure else config.certs_dir
            channel = agent_channel(address, certs_dir=certs, secret=secret)
            try:
                yield RunningAgent(address, tugboat_pb2_grpc.TugboatServiceStub(channel), config,
                                   channel, server, router, secret, certs)
            finally:
                channel.close()
    return _run()


@pytest.fixture
def agent(agent_home, docker_client):
    """An agent served in-process on 127.0.0.1:<free port> with its state in `agent_home`,
    routing through its own HAProxy whose front door is on another free port."""
    with start_agent(agent_config(agent_home), docker_client) as running:
        yield running


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server for the session: the one `SERVERSINC_TEST_POSTGRES_URL` names (an admin
    URL; scripts/test.sh starts one), else a cluster of the session's own, stopped and removed after."""
    import os

    from tests.support.postgres import ENV_ADMIN_URL, PostgresCluster, find_bin_dir

    url = os.environ.get(ENV_ADMIN_URL)
    if url:
        cluster = PostgresCluster.attach(url)
    elif find_bin_dir() is None:
        pytest.skip("PostgreSQL is not installed (scripts/test.sh installs it)")
    else:
        # Stopped after the session, at exit, or by its reaper if this process is killed.
        cluster = PostgresCluster.start(owner_pid=os.getpid())
        atexit.register(cluster.stop)
    yield cluster
    cluster.stop()


@pytest.fixture
def database_url(tmp_path):
    """The control plane's database outside tests/integration: SQLite in the test's home.
    tests/integration overrides it to run every test on SQLite and on PostgreSQL."""
    return f"sqlite:///{tmp_path / 'cp' / 'db.sqlite'}"


@pytest.fixture
def postgres_url(postgres):
    """The SQLAlchemy URL of a fresh, empty database of this test's own, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = postgres.create_database(name)
    yield url
    postgres.drop_database(name)
