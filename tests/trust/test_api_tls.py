"""TLS on the control-plane API: refused in the handshake without the platform CA, the CLI finding
the CA in SERVERSINC_HOME, and plaintext only when asked for (with a warning).

The control plane here runs in-process without workers or an agent (nothing is deployed): its home
holds only the platform CA (ca.pem, ca-key.pem), so every test also shows it issuing its own
api.pem from that CA at start."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from serversinc.v1 import app_pb2, app_service_pb2, app_service_pb2_grpc

from client.connection import auth_metadata
from common.api_tls import CA_ENV, PLAINTEXT_ENV
from scripts.certs import load_pair, make_ca
from services.api.server import run_server
from services.config import Settings
from services.platform import Platform
from tests.conftest import free_port

CLI = Path(sys.executable).with_name("serversinc")
API = Path(sys.executable).with_name("serversinc-api")


@dataclass
class Api:
    home: Path
    address: str
    token: str

    @property
    def ca(self) -> bytes:
        return (self.home / "certs" / "ca.pem").read_bytes()


@pytest.fixture
def api(tmp_path, agent_certs, monkeypatch):
    """A control plane on TLS (the default) whose home holds the session CA and nothing else."""
    home = tmp_path / "cp"
    (home / "certs").mkdir(parents=True)
    for name in ("ca.pem", "ca-key.pem"):
        shutil.copy(agent_certs / name, home / "certs" / name)
    monkeypatch.delenv(PLAINTEXT_ENV, raising=False)
    settings = Settings.from_env(home=home, database_url=f"sqlite:///{home / 'db.sqlite'}")
    settings.local_agent_address, settings.metrics_address = "127.0.0.1:1", ""
    with run_server(Platform(settings), port=0, start_worker=False) as (_, port):
        yield Api(home, f"127.0.0.1:{port}", (home / "api-token").read_text().strip())


def _apps(channel: grpc.Channel) -> app_service_pb2_grpc.AppServiceStub:
    return app_service_pb2_grpc.AppServiceStub(channel)


def _create(channel: grpc.Channel, token: str, name: str):
    app = app_pb2.App(name=name, repo_url="https://example.com/r.git", branch="main")
    return _apps(channel).CreateApp(app_service_pb2.CreateAppRequest(app=app), metadata=auth_metadata(token),
                                    timeout=10)


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in (CA_ENV, PLAINTEXT_ENV, "SERVERSINC_TOKEN")}
    return subprocess.run([str(CLI), *args], capture_output=True, text=True, timeout=60, env={**base, **env})


def test_the_api_refuses_a_plaintext_client_and_a_client_of_an_unknown_ca(api):
    # Both carry a valid API token: the handshake refuses them before any call is read.
    with grpc.insecure_channel(api.address) as plain:
        with pytest.raises(grpc.RpcError) as refused:
            _create(plain, api.token, "via-plaintext")
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "Socket closed" in refused.value.details(), refused.value.details()

    foreign = grpc.ssl_channel_credentials(make_ca("Somebody else's CA").cert_pem)
    with grpc.secure_channel(api.address, foreign) as other:
        with pytest.raises(grpc.RpcError) as refused:
            _create(other, api.token, "via-foreign-ca")
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "CERTIFICATE_VERIFY_FAILED" in refused.value.details(), refused.value.details()

    # With the platform CA the same call goes through; the refused ones created nothing.
    with grpc.secure_channel(api.address, grpc.ssl_channel_credentials(api.ca)) as good:
        _create(good, api.token, "via-tls")
        listed = _apps(good).ListApps(app_service_pb2.ListAppsRequest(), metadata=auth_metadata(api.token))
    assert [a.name for a in listed.apps] == ["via-tls"]

    # The certificate it served was issued at start from the CA in its home.
    issued = load_pair(api.home / "certs", "api")
    assert issued.cert.issuer == load_pair(api.home / "certs", "ca").cert.subject
    san = issued.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)


def test_the_cli_verifies_the_api_with_the_ca_in_serversinc_home(api, tmp_path):
    with grpc.secure_channel(api.address, grpc.ssl_channel_credentials(api.ca)) as channel:
        _create(channel, api.token, "web")
    # A list of replicas (the first down) is one channel over IP addresses: it verifies too.
    both = f"127.0.0.1:{free_port()},{api.address}"
    for address in (api.address, both):
        done = _cli("apps", "list", "--json", SERVERSINC_HOME=str(api.home), SERVERSINC_API=address)
        assert done.returncode == 0, done.stderr
        assert [a["name"] for a in json.loads(done.stdout)] == ["web"]

    # A home without the CA: refused before any call, saying which file and what to do.
    empty = tmp_path / "elsewhere"
    done = _cli("apps", "list", SERVERSINC_HOME=str(empty), SERVERSINC_API=api.address,
                SERVERSINC_TOKEN=api.token)
    assert done.returncode == 2 and not done.stdout
    assert str(empty / "certs" / "ca.pem") in done.stderr and CA_ENV in done.stderr, done.stderr
    # The CA named by SERVERSINC_CA is used instead of the home's.
    done = _cli("apps", "list", "--json", SERVERSINC_HOME=str(empty), SERVERSINC_API=api.address,
                SERVERSINC_TOKEN=api.token, **{CA_ENV: str(api.home / "certs" / "ca.pem")})
    assert done.returncode == 0 and [a["name"] for a in json.loads(done.stdout)] == ["web"], done.stderr
    # A CA that did not issue the API's certificate: the handshake fails, and the hint says which setting.
    foreign = tmp_path / "foreign-ca.pem"
    foreign.write_bytes(make_ca("Somebody else's CA").cert_pem)
    done = _cli("apps", "list", SERVERSINC_API=api.address, SERVERSINC_TOKEN=api.token, **{CA_ENV: str(foreign)})
    assert done.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in done.stderr, done.stderr
    assert f"set ${CA_ENV} to the platform's ca.pem" in done.stderr, done.stderr


def test_plaintext_only_when_asked_for_and_with_a_warning(tmp_path, agent_certs, monkeypatch, caplog):
    home = tmp_path / "cp"
    monkeypatch.setenv(PLAINTEXT_ENV, "1")
    settings = Settings.from_env(home=home, database_url=f"sqlite:///{home / 'db.sqlite'}")
    settings.local_agent_address, settings.metrics_address = "127.0.0.1:1", ""
    monkeypatch.delenv(PLAINTEXT_ENV)
    with caplog.at_level(logging.WARNING, logger="services.api.server"):
        # No certificate and no CA in this home: plaintext needs neither.
        with run_server(Platform(settings), port=0, start_worker=False) as (_, port):
            address = f"127.0.0.1:{port}"
            token = (home / "api-token").read_text().strip()
            warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            assert any("PLAINTEXT" in w and PLAINTEXT_ENV in w for w in warnings), warnings
            with grpc.insecure_channel(address) as plain:
                _create(plain, token, "web")
            # A client speaks plaintext only when told to; by default it wants TLS, and fails.
            done = _cli("apps", "list", "--json", SERVERSINC_API=address, SERVERSINC_TOKEN=token,
                        **{CA_ENV: str(agent_certs / "ca.pem")})
            assert done.returncode == 1 and not done.stdout, done.stderr
            done = _cli("apps", "list", "--json", SERVERSINC_API=address, SERVERSINC_TOKEN=token,
                        **{PLAINTEXT_ENV: "1"})
            assert done.returncode == 0 and [a["name"] for a in json.loads(done.stdout)] == ["web"], done.stderr
    assert not (home / "certs" / "api.pem").exists()


def test_the_api_without_a_certificate_or_a_ca_refuses_to_start(tmp_path):
    home = tmp_path / "cp"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVERSINC_")}
    env.update(SERVERSINC_HOME=str(home), SERVERSINC_METRICS="")
    done = subprocess.run([str(API), "--listen", f"127.0.0.1:{free_port()}", "--agent", "127.0.0.1:1"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 1, done.stderr
    assert f"no API certificate in {home / 'certs'}" in done.stderr
    assert "scripts/certs.py" in done.stderr and "--plaintext" in done.stderr
