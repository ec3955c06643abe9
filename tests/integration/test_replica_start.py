"""Starting several real `serversinc-api` replicas on one PostgreSQL database.

Replicas starting at once all come up (schema and start-up rows under advisory locks); one whose
secret key cannot read what the others stored refuses to start and says why, instead of failing
at the first deploy; a replica never tries to listen on the clients' list of replicas.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

from serversinc.v1 import app_pb2, app_service_pb2, app_service_pb2_grpc

from client.connection import Connection
from tests.conftest import session_certs
from tests.support.api_process import API, api_command, api_env, free_address, start_api, stop_api

# No agent is needed to start a control plane or to register an app (nothing is deployed here).
NO_AGENT = SimpleNamespace(address="127.0.0.1:1", secret="s" * 40, certs_dir=None)


def home(tmp_path: Path, name: str) -> Path:
    """A home whose certs/ holds the API's TLS certificate and the CA only: no agent certificates,
    this control plane talks to no agent."""
    path = tmp_path / name
    (path / "certs").mkdir(parents=True)
    for file in ("ca.pem", "api.pem", "api-key.pem"):
        shutil.copy(session_certs() / file, path / "certs" / file)
    return path


def test_replicas_started_at_once_all_serve_one_database(tmp_path, postgres_url):
    homes = [home(tmp_path, f"r{i}") for i in range(3)]
    addresses = [free_address() for _ in homes]
    procs = []
    for h, address in zip(homes, addresses):
        command, env = api_command(h, address, NO_AGENT, postgres_url)
        procs.append(subprocess.Popen(command, env=env, stdout=open(h / "api.log", "w"), stderr=subprocess.STDOUT))
    try:
        # One admin token for the database, written to the home of the replica that made it.
        token = _wait_token(homes)
        for h, address in zip(homes, addresses):
            conn = Connection(address, token)
            try:
                _ready(conn, h)
                apps = app_service_pb2_grpc.AppServiceStub(conn.channel)
                apps.ListApps(app_service_pb2.ListAppsRequest())
            finally:
                conn.close()
        assert all(p.poll() is None for p in procs), [(h / "api.log").read_text()[-2000:] for h in homes]
    finally:
        for p in procs:
            stop_api(p)


def test_a_replica_with_another_secret_key_refuses_to_start(tmp_path, postgres_url):
    first_home = home(tmp_path, "first")
    first = start_api(first_home, free_address(), NO_AGENT, postgres_url)
    try:
        conn = Connection(_address_of(first), (first_home / "api-token").read_text().strip())
        try:
            apps = app_service_pb2_grpc.AppServiceStub(conn.channel)
            apps.CreateApp(app_service_pb2.CreateAppRequest(app=app_pb2.App(
                name="web", repo_url="https://example.invalid/web.git", branch="main", port=8080)))
        finally:
            conn.close()
    finally:
        stop_api(first)
    # A second home makes a key of its own: it cannot read the app's webhook secret.
    second_home = home(tmp_path, "second")
    command, env = api_command(second_home, free_address(), NO_AGENT, postgres_url)
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "SERVERSINC_SECRET_KEY" in result.stderr and "Traceback" not in result.stderr
    # With the first replica's key it starts.
    env["SERVERSINC_SECRET_KEY"] = (first_home / "secret.key").read_text().strip()
    proc = subprocess.Popen(command, env=env, stdout=open(second_home / "api.log", "w"), stderr=subprocess.STDOUT)
    try:
        conn = Connection(command[command.index("--listen") + 1], (first_home / "api-token").read_text().strip())
        try:
            _ready(conn, second_home)
        finally:
            conn.close()
    finally:
        stop_api(proc)


def test_a_replica_given_the_clients_list_of_replicas_says_which_address_to_set(tmp_path):
    env = {**api_env(home(tmp_path, "r"), None), "SERVERSINC_API": "127.0.0.1:50051,127.0.0.1:50061"}
    env.pop("SERVERSINC_API_LISTEN", None)
    result = subprocess.run([str(API)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--listen" in result.stderr and "SERVERSINC_API_LISTEN" in result.stderr
    assert "Traceback" not in result.stderr


def _address_of(proc: subprocess.Popen) -> str:
    args = proc.args
    return args[args.index("--listen") + 1]


def _wait_token(homes: list[Path], timeout: float = 60) -> str:
    """The API token the first replica wrote into its home (the others find one in the database)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for h in homes:
            path = h / "api-token"
            if path.exists() and path.read_text().strip():
                return path.read_text().strip()
        time.sleep(0.05)
    raise AssertionError(f"no API token in {homes}: {(homes[0] / 'api.log').read_text()[-2000:]}")


def _ready(conn: Connection, h: Path) -> None:
    import grpc

    try:
        grpc.channel_ready_future(conn.channel).result(timeout=60)
    except grpc.FutureTimeoutError:
        raise AssertionError((h / "api.log").read_text()[-2000:]) from None
