"""Shipping: the compose file validates, every image builds from the local base (no network in
any build), the agent image builds and deploys the sample app against the real engine from
inside its container, and the control-plane image starts and answers gRPC health, on its own
SQLite and, as the compose postgres profile runs it, migrated and serving on a real PostgreSQL.

The images are built once per session by scripts/images.py and cached by a hash of their
sources (label io.serversinc.source), so a re-run with nothing changed builds nothing. The base
image (serversinc-base:bookworm, debootstrap) and the serversinc/*:dev images are kept; every
container and volume a test makes is removed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import docker
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tugboat.v1 import tugboat_pb2_grpc

from common.phases import Phase
from scripts import images
from tests.conftest import free_port
from tests.support.agent_calls import build, deploy, front_get, http_get, wait_until
from tests.support.agent_client import agent_channel
from tests.support.sample_app import commit_version, index_html, make_sample_repo

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
TEST_LABEL = "io.serversinc.test"


# ---- fixtures --------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def built_images(docker_client):
    """All four images, from the local debootstrap base (made once, then cached)."""
    started = time.monotonic()
    ids = images.ensure_images(docker_client, quiet=True)
    print(f"images ready in {time.monotonic() - started:.1f} s")
    return ids


@pytest.fixture
def made(docker_client):
    """Collects containers and volumes a test makes; removes them afterwards."""
    containers, volumes = [], []

    class Made:
        def container(self, image, **kwargs):
            labels = dict(kwargs.pop("labels", {}), **{TEST_LABEL: "ship"})
            container = docker_client.containers.run(image, detach=True, labels=labels, **kwargs)
            containers.append(container)
            return container

        def volume(self):
            volume = docker_client.volumes.create(f"ship-{uuid.uuid4().hex[:10]}",
                                                  labels={TEST_LABEL: "ship"})
            volumes.append(volume)
            return volume.name

    yield Made()
    for container in containers:
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass
    for volume in volumes:
        try:
            volume.remove(force=True)
        except docker.errors.NotFound:
            pass


def _logs(container) -> str:
    try:
        return container.logs().decode("utf-8", "replace")[-3000:]
    except docker.errors.NotFound:
        return "(container gone)"


def _health(container) -> str:
    container.reload()
    return container.attrs["State"].get("Health", {}).get("Status", "none")


def _wait_healthy(container, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        container.reload()
        if container.status == "exited":
            pytest.fail(f"{container.name} exited:\n{_logs(container)}")
        if _health(container) == "healthy":
            return
        time.sleep(0.3)
    pytest.fail(f"{container.name} not healthy after {timeout:.0f} s "
                f"({container.attrs['State'].get('Health')}):\n{_logs(container)}")


def _grpc_serving(address: str, timeout: float = 30.0, container=None, ca: bytes | None = None) -> None:
    """Wait until grpc.health.v1 Check on `address` (plaintext, or TLS verified with `ca`) says SERVING."""
    deadline = time.monotonic() + timeout
    last = None
    channel = (grpc.secure_channel(address, grpc.ssl_channel_credentials(ca)) if ca
               else grpc.insecure_channel(address))
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if container is not None:
                container.reload()
                if container.status == "exited":
                    pytest.fail(f"{container.name} exited:\n{_logs(container)}")
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
                last = reply.status
            except grpc.RpcError as exc:
                last = exc.code()
            time.sleep(0.2)
    pytest.fail(f"{address} not SERVING after {timeout:.0f} s (last: {last})"
                + (f":\n{_logs(container)}" if container is not None else ""))


# Health checks every second in tests (the images say 10 s); the test command is the image's own
# unless a test passes another.
FAST_HEALTH = {"interval": 1_000_000_000, "timeout": 5_000_000_000, "retries": 3,
               "start_period": 60_000_000_000}


# ---- (1) compose -----------------------------------------------------------------------------
def test_compose_file_validates():
    compose = shutil.which("docker-compose")
    assert compose, ("docker-compose is not installed (Debian package docker-compose; "
                     "scripts/lib/setup.sh should install it)")
    result = subprocess.run([compose, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    config = subprocess.run([compose, "-f", str(ROOT / "docker-compose.yml"), "config"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60).stdout
    for name in images.IMAGES:
        assert f"image: {images.image_name(name)}" in config
    assert "/var/run/docker.sock:/var/run/docker.sock" in config



def compose_services(env: dict, *args: str) -> dict[str, str]:
    """`docker-compose [args] config`, cut into each service's block of text (no YAML parser in
    the venv; the rendered file is canonical: two-space indent, one key per line)."""
    compose = shutil.which("docker-compose")
    assert compose, "docker-compose is not installed"
    result = subprocess.run([compose, "-f", str(ROOT / "docker-compose.yml"), *args, "config"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    body = ("\n" + result.stdout).split("\nservices:\n", 1)[1]
    body = re.split(r"^\S", body, maxsplit=1, flags=re.M)[0]  # up to the next top-level key
    names = re.split(r"^  ([\w-]+):\n", body, flags=re.M)[1:]
    return dict(zip(names[::2], names[1::2]))


def test_compose_postgres_profile_validates():
    """The postgres profile adds the server and a one-shot `db upgrade`; the api and the migration
    use the URL given, the password reaches them as PGPASSWORD (never inside the logged URL), and
    without the profile the api keeps the embedded SQLite (an empty URL)."""
    url = "postgresql+psycopg://serversinc@127.0.0.1:5432/serversinc"
    env = {**os.environ, "POSTGRES_PASSWORD": "test-password", "SERVERSINC_DATABASE_URL": url}
    services = compose_services(env, "--profile", "postgres")
    assert {"postgres", "migrate", "api"} <= set(services)
    assert "image: postgres:15" in services["postgres"]
    assert "listen_addresses=127.0.0.1" in services["postgres"]
    assert "- db\n    - upgrade\n" in services["migrate"]
    assert "postgres:\n        condition: service_healthy" in services["migrate"]
    for name in ("api", "migrate"):
        assert f"image: {images.image_name('api')}" in services[name]
        assert f"SERVERSINC_DATABASE_URL: {url}\n" in services[name]
        assert "PGPASSWORD: test-password\n" in services[name]

    plain = compose_services({k: v for k, v in os.environ.items()
                              if k not in ("POSTGRES_PASSWORD", "SERVERSINC_DATABASE_URL")})
    assert "SERVERSINC_DATABASE_URL: ''" in plain["api"]


# ---- (2) every image builds ------------------------------------------------------------------
def test_every_image_builds_from_the_local_base(built_images, docker_client):
    base = docker_client.images.get(images.BASE_TAG)
    assert set(built_images) == set(images.IMAGES)
    for name in images.IMAGES:
        image = docker_client.images.get(images.image_name(name))
        assert image.id == built_images[name]
        assert image.labels[images.SOURCE_LABEL] == images.source_hash(name, base.id)
        config = image.attrs["Config"]
        assert config.get("Healthcheck", {}).get("Test"), f"{name} has no HEALTHCHECK"
        # Non-root except the agent (Docker socket).
        assert (config.get("User") or "root") == ("root" if name == "agent" else "10001:10001"), name
    # Built on the local base: its layers are the images' first layers.
    base_layers = base.attrs["RootFS"]["Layers"]
    for name in images.IMAGES:
        layers = docker_client.images.get(images.image_name(name)).attrs["RootFS"]["Layers"]
        assert layers[:len(base_layers)] == base_layers, name


PROJECT_PACKAGES = ("services", "agent", "common", "client", "cli", "bridge", "dashboard", "serversinc", "tugboat")
COMMANDS = ("serversinc", "serversinc-api", "tugboat", "tugboat-frontdoor", "serversinc-webhook")
INVENTORY = (
    "import importlib.util, shutil, sys\n"
    "packages, commands = sys.argv[1].split(','), sys.argv[2].split(',')\n"
    "print(' '.join(p for p in packages if importlib.util.find_spec(p)))\n"
    "print(' '.join(c for c in commands if shutil.which(c)))\n"
)


@pytest.mark.parametrize("name", sorted(images.IMAGES))
def test_each_image_ships_only_what_it_runs(built_images, made, name):
    # -I: the working directory (/data, with its agent/ folder) must not count as a package.
    image = images.IMAGES[name]
    container = made.container(images.image_name(name), entrypoint=["/opt/serversinc/bin/python", "-I", "-c", INVENTORY],
                               command=[",".join(PROJECT_PACKAGES), ",".join(COMMANDS)], user="10001:10001")
    assert container.wait(timeout=60)["StatusCode"] == 0, _logs(container)
    packages, commands = container.logs(stdout=True, stderr=False).decode().splitlines()
    assert set(packages.split()) == set(image.packages) | set(image.generated)
    expected = {"api": {"serversinc-api"}, "agent": {"tugboat", "tugboat-frontdoor"}, "webhook": {"serversinc-webhook"}, "dashboard": set()}
    assert set(commands.split()) == expected[name]


# ---- (3) the agent in a container builds and deploys -----------------------------------------
def test_agent_in_a_container_builds_and_deploys_the_sample_app(built_images, docker_client, made,
                                                                 app_name, tmp_path):
    repo = make_sample_repo(tmp_path / "repo", "v1")
    repo_dir = str(Path(repo.working_tree_dir).resolve())
    grpc_port, front_port = free_port(), free_port()
    state = made.volume()
    agent = made.container(
        images.image_name("agent"),
        command=["--host", "127.0.0.1", "--port", str(grpc_port),
                 "--front-door", f"127.0.0.1:{front_port}", "--insecure"],
        # Host network: the containers the agent starts are published on the host's 127.0.0.1,
        # which it probes and where its HAProxy front door routes.
        network_mode="host", init=True,
        volumes={"/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
                 state: {"bind": "/data/agent", "mode": "rw"},
                 # The test's repository at the same path (the repo URL is that path).
                 repo_dir: {"bind": repo_dir, "mode": "ro"}},
        healthcheck=dict(FAST_HEALTH, test=["CMD", "serversinc-healthcheck", "grpc",
                                            f"127.0.0.1:{grpc_port}"]),
        name=f"ship-agent-{app_name}")
    address = f"127.0.0.1:{grpc_port}"
    _grpc_serving(address, timeout=60, container=agent)

    # The agent generated its secret and wrote it to its .env on the volume.
    code, out = agent.exec_run(["sh", "-c", "stat -c %a /data/agent/.env && cat /data/agent/.env"])
    assert code == 0, out
    mode, *lines = out.decode().splitlines()
    assert mode == "600"
    secret = next(line.split("=", 1)[1].strip().strip("'\"") for line in lines
                  if line.startswith("TUGBOAT_SECRET_KEY="))

    channel = agent_channel(address, certs_dir=None, secret=secret)
    try:
        stub = tugboat_pb2_grpc.TugboatServiceStub(channel)
        v1 = repo.head.commit.hexsha
        last = build(stub, app_name, repo, v1, 1)[-1]
        assert last.error == "", f"{last.error}\n{_logs(agent)}"
        assert last.result.image == f"{app_name}:{v1}"
        assert docker_client.images.get(f"{app_name}:{v1}").id == last.result.image_id
        done = deploy(stub, app_name, v1, 1)[-1]
        assert done.phase is Phase.DONE, (done.failure, done.error, _logs(agent))

        host = f"{app_name}.localhost"
        assert wait_until(lambda: front_get(f"127.0.0.1:{front_port}", host, timeout=1)
                          == (200, index_html("v1")), timeout=10), _logs(agent)

        # A second commit: incremental fetch into the cache on the volume, build, swap.
        v2 = commit_version(repo, "v2")
        last = build(stub, app_name, repo, v2, 2)[-1]
        assert last.error == "", last.error
        done = deploy(stub, app_name, v2, 2)[-1]
        assert done.phase is Phase.DONE, (done.failure, done.error, _logs(agent))
        status, body = front_get(f"127.0.0.1:{front_port}", host)
        assert (status, body) == (200, index_html("v2"))
    finally:
        channel.close()

    # The repository cache is on the state volume; the image's HEALTHCHECK script reports healthy.
    code, out = agent.exec_run(["sh", "-c", "ls /data/agent/repos"])
    assert code == 0 and app_name in out.decode(), out
    _wait_healthy(agent, timeout=30)


# ---- (4) the control plane image -------------------------------------------------------------
def test_control_plane_image_inits_and_answers_health(built_images, docker_client, made):
    data = made.volume()
    init = made.container(images.image_name("api"), user="0:0", entrypoint=["serversinc-entrypoint"],
                          command=["init"], network_mode="none",
                          volumes={data: {"bind": "/data", "mode": "rw"}})
    assert init.wait(timeout=60)["StatusCode"] == 0, _logs(init)

    port = free_port()
    api = made.container(images.image_name("api"),
                         command=["--listen", "0.0.0.0:50051", "--agent", "127.0.0.1:50052"],
                         environment={"SERVERSINC_METRICS": ""}, init=True,
                         ports={"50051/tcp": ("127.0.0.1", port)},
                         volumes={data: {"bind": "/data", "mode": "rw"}},
                         healthcheck=FAST_HEALTH)
    # The API serves TLS with the api.pem init issued; a client verifies it with init's ca.pem.
    code, ca = api.exec_run(["cat", "/data/certs/ca.pem"])
    assert code == 0, ca
    _grpc_serving(f"127.0.0.1:{port}", timeout=60, container=api, ca=ca)
    _wait_healthy(api, timeout=30)

    # init made the certificates and the agent secret, readable by the api's user; the api made
    # its database and its bootstrap API token on the volume.
    code, out = api.exec_run(["sh", "-c", "id -u; ls /data/certs; ls -n /data/agent/.env; ls /data"])
    text = out.decode()
    assert code == 0, text
    assert text.splitlines()[0] == "10001"
    for name in ("ca.pem", "agent.pem", "agent-key.pem", "control-plane.pem", "control-plane-key.pem",
                 "api.pem", "api-key.pem"):
        assert name in text, text
    assert " 10001 10001 " in text and "serversinc.db" in text and "api-token" in text, text

    # Running init again keeps what exists.
    before = api.exec_run(["cat", "/data/agent/.env", "/data/certs/ca.pem"]).output
    again = made.container(images.image_name("api"), user="0:0", entrypoint=["serversinc-entrypoint"],
                           command=["init"], network_mode="none",
                           volumes={data: {"bind": "/data", "mode": "rw"}})
    assert again.wait(timeout=60)["StatusCode"] == 0, _logs(again)
    assert api.exec_run(["cat", "/data/agent/.env", "/data/certs/ca.pem"]).output == before


def test_control_plane_image_runs_the_compose_postgres_path(built_images, made, postgres_url):
    """The postgres profile's two steps with the image itself against a real PostgreSQL: `db
    upgrade` (the migrate service) brings the empty database to the newest schema, then the api
    runs on it (the driver is in the image) and keeps its rows there, with no SQLite file."""
    import sqlalchemy as sa

    from services.db import schema

    data = made.volume()
    init = made.container(images.image_name("api"), user="0:0", entrypoint=["serversinc-entrypoint"],
                          command=["init"], network_mode="none",
                          volumes={data: {"bind": "/data", "mode": "rw"}})
    assert init.wait(timeout=60)["StatusCode"] == 0, _logs(init)
    env = {"SERVERSINC_DATABASE_URL": postgres_url, "SERVERSINC_METRICS": ""}
    # Host network, as in the compose file: the test's server listens on the host's 127.0.0.1.
    migrate = made.container(images.image_name("api"), command=["db", "upgrade"], network_mode="host",
                             environment=env, volumes={data: {"bind": "/data", "mode": "rw"}})
    assert migrate.wait(timeout=120)["StatusCode"] == 0, _logs(migrate)
    assert migrate.logs(stdout=True, stderr=False).decode().split()[0] == schema.head(), _logs(migrate)

    port = free_port()
    api = made.container(images.image_name("api"),
                         command=["--listen", f"127.0.0.1:{port}", "--agent", "127.0.0.1:1"],
                         environment=env, init=True, network_mode="host",
                         volumes={data: {"bind": "/data", "mode": "rw"}}, healthcheck=FAST_HEALTH)
    code, ca = api.exec_run(["cat", "/data/certs/ca.pem"])
    assert code == 0, ca
    _grpc_serving(f"127.0.0.1:{port}", timeout=60, container=api, ca=ca)

    engine = sa.create_engine(postgres_url)
    try:
        assert schema.current(engine) == schema.head()
        with engine.connect() as c:
            # The bootstrap API token the api made at its first start is a row of PostgreSQL's.
            assert c.execute(sa.text("SELECT count(*) FROM api_tokens")).scalar_one() == 1
    finally:
        engine.dispose()
    code, out = api.exec_run(["ls", "/data"])
    assert code == 0 and "api-token" in out.decode() and "serversinc.db" not in out.decode(), out


# ---- the webhook and dashboard images start and report healthy -------------------------------
@pytest.mark.parametrize("name,port,path", [("webhook", 8088, "/healthz"),
                                            ("dashboard", 8501, "/_stcore/health")])
def test_http_images_start_and_are_healthy(built_images, made, name, port, path):
    host_port = free_port()
    command = (["--listen", f"0.0.0.0:{port}", "--api", "127.0.0.1:50051"] if name == "webhook"
               else ["--server.address", "0.0.0.0", "--server.port", str(port)])
    # No control plane (nor its CA) here: the bridge, which reads the CA at start, is told the
    # API is plaintext; only its own health endpoint is checked.
    container = made.container(images.image_name(name), command=command, init=True,
                               environment={"SERVERSINC_API_PLAINTEXT": "1"} if name == "webhook" else {},
                               ports={f"{port}/tcp": ("127.0.0.1", host_port)},
                               healthcheck=FAST_HEALTH)
    url = f"http://127.0.0.1:{host_port}"

    def answers():
        try:
            return http_get(url, path, timeout=1)[0] == 200
        except OSError:
            return False
    assert wait_until(answers, timeout=60, interval=0.3), _logs(container)
    _wait_healthy(container, timeout=30)
