"""Enrollment by CSR and certificate rotation on loopback, against a real control plane over real
TLS: the CA pinned by fingerprint before the token is sent, the agent's key made on the agent,
and a renewal that no call notices while new connections get the new certificate."""

from __future__ import annotations

import shutil
import socket
import ssl
import threading
from concurrent import futures

import grpc
import pytest
from cryptography import x509
from serversinc.v1 import server_service_pb2 as spb
from serversinc.v1 import server_service_pb2_grpc
from tugboat.v1 import tugboat_pb2

from agent import enroll
from agent.server import make_router, run_server as run_agent
from common import pki
from services.api.server import run_server as run_api
from services.config import Settings
from services.platform import Platform
from tests.conftest import agent_config, free_port, new_secret
from tests.integration import conftest as integration
from tests.support.agent_client import agent_channel

token_channel = integration.token_channel
control_plane_cli = integration.control_plane_cli
pytestmark = pytest.mark.docker


@pytest.fixture
def control_plane(tmp_path, agent_certs):
    """A control plane (SQLite) over TLS whose certs folder holds the session CA and its key."""
    home = tmp_path / "cp"
    shutil.copytree(agent_certs, home / "certs")
    settings = Settings.from_env(home=home, database_url=f"sqlite:///{home / 'db.sqlite'}")
    settings.agent_tls = True
    platform = Platform(settings)
    with run_api(platform, port=0) as (_, port):
        channel = token_channel(f"127.0.0.1:{port}", (home / "api-token").read_text().strip())
        yield f"127.0.0.1:{port}", platform, server_service_pb2_grpc.ServerServiceStub(channel)
        channel.close()


def served_serial(address: str) -> str:
    """The serial (hex) of the certificate a new TLS connection to `address` is served."""
    host, port = address.rsplit(":", 1)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection((host, int(port)), timeout=5) as raw, context.wrap_socket(raw) as tls:
        return pki.serial_hex(x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)))


def test_csr_enrollment_refusals_then_rotation_with_no_failed_call(control_plane, control_plane_cli, tmp_path,
                                                                   agent_certs):
    api, platform, servers = control_plane
    cli = control_plane_cli(api, SERVERSINC_TOKEN=(platform.settings.home / "api-token").read_text().strip())
    port = free_port()
    created = servers.CreateServer(spb.CreateServerRequest(name="edge", address=f"127.0.0.1:{port}"))
    ca_hash = pki.fingerprint((agent_certs / "ca.pem").read_bytes())
    assert created.ca_fingerprint == ca_hash and created.join_command.endswith(f"--ca-hash {ca_hash}")
    secret, certs = new_secret(), tmp_path / "agent" / "certs"

    # A wrong fingerprint: refused with both fingerprints named, and the token never reached the API.
    with pytest.raises(enroll.EnrollError) as wrong:
        enroll.enroll_with_csr(api, created.join_token, "sha256:" + "ab" * 32, secret, "", certs)
    assert f"the API's CA fingerprint is {ca_hash}, the join command says sha256:{'ab' * 32}" in str(wrong.value)
    assert platform.servers.join_token_usable("edge", created.join_token)
    assert not certs.exists()

    enroll.enroll_with_csr(api, created.join_token, ca_hash, secret, f"127.0.0.1:{port}", certs)
    assert (certs / "agent-key.pem").stat().st_mode & 0o777 == 0o600
    issued = x509.load_pem_x509_certificate((certs / "agent.pem").read_bytes())
    assert (certs / "ca.pem").read_bytes() == (agent_certs / "ca.pem").read_bytes()
    first = servers.GetServer(spb.GetServerRequest(name="edge"), timeout=10)
    assert first.registered and first.cert_serial == pki.serial_hex(issued)
    assert first.cert_expire_time.ToDatetime().date() == issued.not_valid_after_utc.date()

    # The token works once.
    with pytest.raises(enroll.EnrollError, match="refused to enroll this agent"):
        enroll.enroll_with_csr(api, created.join_token, ca_hash, new_secret(), "", tmp_path / "again")
    assert not (tmp_path / "again").exists()

    config = agent_config(tmp_path / "agent" / "home", router="direct", certs_dir=certs, secret=secret)
    with run_agent(config, port=port, router=make_router(config)):
        address = f"127.0.0.1:{port}"
        assert served_serial(address) == first.cert_serial
        platform.agents.for_server("edge")._connected()  # its channel was made while the agent was down
        # Calls on a connection opened before the rotation (the control plane's own, through
        # GetServer) and on a new connection each time, until the rotation is done and more after.
        failures, calls, after = [], [0], threading.Event()
        rotated, stop = threading.Event(), threading.Event()

        def keep_calling():
            since = 0
            while not stop.is_set():
                try:
                    got = servers.GetServer(spb.GetServerRequest(name="edge"), timeout=10)
                    if got.state != spb.SERVER_STATE_ONLINE:
                        failures.append(f"GetServer: {got.error}")
                    fresh = agent_channel(address, certs_dir=agent_certs, secret=secret)
                    try:
                        from tugboat.v1 import tugboat_pb2_grpc

                        tugboat_pb2_grpc.TugboatServiceStub(fresh).GetInfo(tugboat_pb2.GetInfoRequest(), timeout=10)
                    finally:
                        fresh.close()
                except grpc.RpcError as err:
                    failures.append(f"{err.code().name}: {err.details()}")
                calls[0] += 1
                if rotated.is_set():
                    since += 1
                    if since >= 5:
                        after.set()

        caller = threading.Thread(target=keep_calling, daemon=True)
        caller.start()
        try:
            renewed = cli.json("servers", "rotate-cert", "edge", "--json")  # RotateServerCertificate
            rotated.set()
            assert after.wait(60), failures
        finally:
            stop.set()
            caller.join(30)
        assert failures == [] and calls[0] >= 5
        on_disk = x509.load_pem_x509_certificate((certs / "agent.pem").read_bytes())
        assert renewed["cert_serial"] == pki.serial_hex(on_disk) != first.cert_serial
        assert served_serial(address) == renewed["cert_serial"]
        [listed] = [s for s in cli.json("servers", "list", "--json") if s["name"] == "edge"]
        assert listed["cert_serial"] == renewed["cert_serial"] and listed["cert_expire_time"]

    with pytest.raises(grpc.RpcError) as unknown:
        servers.RotateServerCertificate(spb.RotateServerCertificateRequest(name="nope"), timeout=10)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


class _Recorder(grpc.GenericRpcHandler):
    def __init__(self):
        self.methods = []

    def service(self, handler_call_details):
        self.methods.append(handler_call_details.method)
        return None


def test_a_foreign_ca_is_refused_and_nothing_is_sent(tmp_path, agent_certs):
    """An impostor presents the platform CA's (public) certificate beside its own, from another CA."""
    ca_pem = (agent_certs / "ca.pem").read_bytes()
    impostor = pki.make_leaf(pki.make_ca(), "serversinc-api", hosts=["serversinc-api", "127.0.0.1"])
    recorder = _Recorder()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=[recorder])
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials(
        [(impostor.key_pem, impostor.cert_pem + ca_pem)]))
    server.start()
    try:
        with pytest.raises(enroll.EnrollError, match="foreign CA"):
            enroll.enroll_with_csr(f"127.0.0.1:{port}", "join_x", pki.fingerprint(ca_pem), new_secret(), "",
                                   tmp_path / "certs")
    finally:
        server.stop(0)
    assert recorder.methods == [] and not (tmp_path / "certs").exists()
