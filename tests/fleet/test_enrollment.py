"""Enrollment of a real host by the join command alone (issue 13): host B starts with no
certificates, runs exactly the command `servers add` printed (plus its state dir and a front
door port of its own), checks the API's CA against the fingerprint in it, gets its certificate
by CSR, and takes a deploy. A wrong fingerprint is refused before the token is sent; the token
works once."""

from __future__ import annotations

import itertools
import re
import shlex
import shutil
import signal
import uuid
from urllib.parse import urlsplit

import pytest
import requests
from cryptography import x509
from serversinc.v1 import app_service_pb2_grpc, deployment_pb2, deployment_service_pb2_grpc
from serversinc.v1 import git_service_pb2_grpc, server_service_pb2, server_service_pb2_grpc

from common import pki
from services.api.server import run_server
from services.config import Settings
from services.platform import Platform
from tests.conftest import cleanup_app
from tests.integration.conftest import ControlPlane, token_channel
from tests.support.hosts import start_agent_from_argv
from tests.support.sample_app import make_sample_repo, repo_url

pytestmark = pytest.mark.docker
FRONT_DOOR_PORT = 8100  # beside the session agent's front door (8000), which keeps serving


@pytest.fixture
def control_plane_for_b(tmp_path, hosts, agent_certs, monkeypatch):
    """A control plane (SQLite) listening on the root side of host B's link, the address its join
    commands carry; its API certificate is issued at start for that address."""
    b = hosts[1]
    home = tmp_path / "cp"
    shutil.copytree(agent_certs, home / "certs")
    for name in ("api.pem", "api-key.pem"):
        (home / "certs" / name).unlink()
    settings = Settings.from_env(home=home, database_url=f"sqlite:///{home / 'db.sqlite'}")
    settings.local_agent_address = "127.0.0.1:1"
    settings.metrics_address = "127.0.0.1:0"
    platform = Platform(settings)
    with run_server(platform, host=b.peer_address, port=0) as (_, port):
        settings.api_address = address = f"{b.peer_address}:{port}"
        token = (home / "api-token").read_text().strip()
        monkeypatch.setenv("SERVERSINC_TOKEN", token)
        channel = token_channel(address, token)
        yield ControlPlane(address, platform, channel, app_service_pb2_grpc.AppServiceStub(channel),
                           deployment_service_pb2_grpc.DeploymentServiceStub(channel),
                           git_service_pb2_grpc.GitServiceStub(channel),
                           server_service_pb2_grpc.ServerServiceStub(channel))
        channel.close()


def test_host_b_enrolls_by_the_printed_command_alone_then_takes_a_deploy(control_plane_for_b, hosts,
                                                                         agent_certs, tmp_path):
    cp, b = control_plane_for_b, hosts[1]
    created = cp.servers.CreateServer(server_service_pb2.CreateServerRequest(name="b", address=b.agent_address))
    words = shlex.split(created.join_command)
    # The printed command is `TUGBOAT_JOIN_TOKEN=… tugboat …`: the shell puts the first word in the
    # agent's environment, as a user's shell would.
    leading = list(itertools.takewhile(lambda word: re.fullmatch(r"[A-Z_]+=\S+", word), words))
    env, argv = dict(word.split("=", 1) for word in leading), words[len(leading):]
    assert env == {"TUGBOAT_JOIN_TOKEN": created.join_token} and "--join-token" not in argv
    ca_hash = pki.fingerprint((agent_certs / "ca.pem").read_bytes())
    assert argv[0] == "tugboat" and argv[argv.index("--ca-hash") + 1] == ca_hash == created.ca_fingerprint
    assert argv[argv.index("--join") + 1] == cp.address
    wrong = list(argv)
    wrong[wrong.index("--ca-hash") + 1] = "sha256:" + "0" * 64

    b.stop_agent(signal.SIGTERM)  # B's port is the one the command listens on
    app, agent = f"enr-{uuid.uuid4().hex[:8]}", None
    try:
        refused = start_agent_from_argv(b, wrong, tmp_path / "wrong" / "agent", env=env)
        assert not refused.listening and refused.proc.returncode != 0, refused.text
        assert f"the API's CA fingerprint is {ca_hash}, the join command says sha256:{'0' * 64}" in refused.text
        assert cp.platform.servers.join_token_usable("b", created.join_token)  # never sent
        assert not any((tmp_path / "wrong" / "certs").glob("*.pem"))

        agent = start_agent_from_argv(b, [*argv, "--front-door", f"{b.address}:{FRONT_DOOR_PORT}"],
                                      tmp_path / "joined" / "agent", env=env)
        assert agent.listening and "(mutual TLS)" in agent.text, agent.text
        certs = tmp_path / "joined" / "certs"
        issued = x509.load_pem_x509_certificate((certs / "agent.pem").read_bytes())
        assert (certs / "agent-key.pem").stat().st_mode & 0o777 == 0o600
        assert (certs / "ca.pem").read_bytes() == (agent_certs / "ca.pem").read_bytes()
        names = issued.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == [b.address]
        server = cp.servers.GetServer(server_service_pb2.GetServerRequest(name="b"), timeout=30)
        assert server.registered and server.state == server_service_pb2.SERVER_STATE_ONLINE, server.error
        assert server.cert_serial == pki.serial_hex(issued)

        repo = make_sample_repo(tmp_path / "repo", f"v1-{app}")
        cp.create_app(app, repo_url(repo), server="b")
        dep = cp.wait(cp.deploy(app).name, timeout=180)
        assert dep.state == deployment_pb2.DEPLOYMENT_STATE_SUCCEEDED, dep
        served = requests.get(f"http://{b.address}:{FRONT_DOOR_PORT}{urlsplit(dep.url).path or '/'}",
                              headers={"Host": urlsplit(dep.url).netloc}, timeout=5)
        assert served.status_code == 200 and f"v1-{app}" in served.text

        # The same command once more, on a machine with no certificates: the token is used.
        again = start_agent_from_argv(b, argv, tmp_path / "again" / "agent", env=env)
        assert not again.listening and again.proc.returncode != 0, again.text
        assert "refused to enroll this agent" in again.text and "unknown, used or expired" in again.text
        text = refused.text + agent.text + again.text
        assert created.join_token not in text
    finally:
        if agent is not None:
            try:
                cp.platform.delete_app(app)
            except Exception:  # never created, or the agent is gone: swept below
                pass
            agent.stop()
        with b.docker() as engine:
            cleanup_app(engine, app)
        b.start_agent()
