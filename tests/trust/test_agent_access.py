"""Who may call the agent: real mutual TLS, real gRPC, a real deployed app.

Every refused combination gets its status code, never reaches a servicer method, and leaves the
app's containers and images exactly as they were; the one good combination works.
"""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tugboat.v1 import tugboat_pb2 as pb
from tugboat.v1 import tugboat_pb2_grpc

from tests.conftest import agent_config, start_agent
from common.phases import Phase
from tests.support.agent_calls import deploy, http_get
from tests.support.agent_client import agent_channel
from tests.support.sample_app import APP_PORT
from tests.trust.conftest import count_handler_calls, deploy_sample, rpc_code

pytestmark = pytest.mark.docker

UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
PERMISSION_DENIED = grpc.StatusCode.PERMISSION_DENIED


def _attempts(stub, deployed):
    """The calls an intruder would make: read, redeploy, rebuild, remove (all must fail)."""
    app, sha = deployed.app, deployed.sha
    return {
        "GetInfo": lambda: stub.GetInfo(pb.GetInfoRequest(), timeout=10),
        "Deploy": lambda: list(stub.Deploy(pb.DeployRequest(
            app=app, deployment_id=deployed.deployment_id(), image=f"{app}:{sha}", commit_sha=sha,
            port=APP_PORT), timeout=30)),
        "Build": lambda: list(stub.Build(pb.BuildRequest(
            app=app, deployment_id=deployed.deployment_id(), repo_url="/nonexistent",
            commit_sha=sha, force=True), timeout=30)),
        "StopApp": lambda: stub.StopApp(pb.StopAppRequest(app=app), timeout=10),
        "RemoveApp": lambda: stub.RemoveApp(pb.RemoveAppRequest(app=app), timeout=10),
        "StreamLogs": lambda: list(stub.StreamLogs(pb.StreamLogsRequest(app=app, tail=1), timeout=10)),
    }


def _assert_refused(channel, deployed, expected: grpc.StatusCode) -> None:
    before_state, before_calls = deployed.state(), dict(deployed.calls)
    assert any(status == "running" for _, status in before_state.containers), before_state
    stub = tugboat_pb2_grpc.TugboatServiceStub(channel)
    codes = {name: rpc_code(call) for name, call in _attempts(stub, deployed).items()}
    assert codes == {name: expected for name in codes}
    assert dict(deployed.calls) == before_calls, "a servicer method ran for a refused call"
    assert deployed.state() == before_state, "Docker state changed for a refused call"


# ---- the handshake refuses clients without a certificate from our CA --------------------------
def test_no_client_certificate_is_refused_in_the_handshake(deployed, agent_certs):
    channel = agent_channel(deployed.agent.address, certs_dir=agent_certs,
                            secret=deployed.agent.secret, client_cert=False)
    with channel:
        _assert_refused(channel, deployed, UNAVAILABLE)


@pytest.mark.parametrize("which", ["foreign", "expired", "not_yet_valid", "server_only"])
def test_bad_client_certificate_is_refused_in_the_handshake(deployed, bad_certs, which):
    """Another CA; our CA but expired / not yet valid; our CA but a serverAuth-only certificate
    (the agent's own): BoringSSL refuses each while verifying the client certificate."""
    pair = getattr(bad_certs, which)
    channel = agent_channel(deployed.agent.address, ca=bad_certs.ca, cert=pair.cert_pem,
                            key=pair.key_pem, secret=deployed.agent.secret)
    with channel:
        _assert_refused(channel, deployed, UNAVAILABLE)


def test_plaintext_client_is_refused(deployed):
    with agent_channel(deployed.agent.address, secret=deployed.agent.secret) as channel:
        _assert_refused(channel, deployed, UNAVAILABLE)


def test_client_that_does_not_trust_our_ca_is_not_served(deployed, bad_certs, agent_certs):
    """The client side of the handshake: an agent cert the client's CA did not issue is refused."""
    from scripts.certs import make_ca

    cp = agent_certs
    channel = agent_channel(deployed.agent.address, ca=make_ca("Not ours").cert_pem,
                            cert=(cp / "control-plane.pem").read_bytes(),
                            key=(cp / "control-plane-key.pem").read_bytes(),
                            secret=deployed.agent.secret)
    with channel:
        _assert_refused(channel, deployed, UNAVAILABLE)


# ---- the right certificate, but not the right secret ------------------------------------------
def test_right_certificate_without_secret_is_unauthenticated(deployed, agent_certs):
    with agent_channel(deployed.agent.address, certs_dir=agent_certs) as channel:
        _assert_refused(channel, deployed, UNAUTHENTICATED)


def test_right_certificate_with_wrong_secret_is_unauthenticated(deployed, agent_certs):
    wrong = deployed.agent.secret[:-1] + ("A" if deployed.agent.secret[-1] != "A" else "B")
    with agent_channel(deployed.agent.address, certs_dir=agent_certs, secret=wrong) as channel:
        _assert_refused(channel, deployed, UNAUTHENTICATED)


def test_secret_of_another_server_is_unauthenticated(deployed, other_agent, agent_certs):
    assert other_agent.secret != deployed.agent.secret
    # The other secret is real: its own agent accepts it.
    assert other_agent.stub.GetInfo(pb.GetInfoRequest(), timeout=10).docker_version
    with agent_channel(deployed.agent.address, certs_dir=agent_certs,
                       secret=other_agent.secret) as channel:
        _assert_refused(channel, deployed, UNAUTHENTICATED)


def test_health_check_stays_open_but_reveals_nothing(deployed, agent_certs):
    with agent_channel(deployed.agent.address, certs_dir=agent_certs) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        # Health is open; everything else still needs the secret.
        code = rpc_code(lambda: tugboat_pb2_grpc.TugboatServiceStub(channel).ListContainers(
            pb.ListContainersRequest(), timeout=5))
        assert code == UNAUTHENTICATED


# ---- the one good combination ----------------------------------------------------------------
def test_right_certificate_and_secret_work(deployed, agent_certs):
    before = dict(deployed.calls)
    with agent_channel(deployed.agent.address, certs_dir=agent_certs,
                       secret=deployed.agent.secret) as channel:
        stub = tugboat_pb2_grpc.TugboatServiceStub(channel)
        info = stub.GetInfo(pb.GetInfoRequest(), timeout=10)
        assert info.docker_version and info.running_containers >= 1
        done = deploy(stub, deployed.app, deployed.sha, deployed.deployment_id())[-1]
        assert done.phase is Phase.DONE and not done.failure, (done.failure, done.error)
        assert http_get(done.url)[0] == 200
    assert deployed.calls["GetInfo"] == before.get("GetInfo", 0) + 1
    assert deployed.calls["Deploy"] == before.get("Deploy", 0) + 1


# ---- the peer-address allowlist --------------------------------------------------------------
def test_address_not_on_allowlist_is_permission_denied(tmp_path, app_name, docker_client,
                                                       agent_certs, monkeypatch):
    """Deploy with an open agent, restart it on the same state with an allowlist that excludes
    127.0.0.1: right certificate and secret, still PERMISSION_DENIED and nothing touched."""
    from tests.trust.conftest import Deployed

    calls = count_handler_calls(monkeypatch)
    home = tmp_path / "home"
    home.mkdir()
    config = agent_config(home, router="direct")
    with start_agent(config, docker_client) as agent:
        sha = deploy_sample(agent, app_name, tmp_path)

    fenced = agent_config(home, router="direct", secret=config.secret, allow=("10.0.0.0/8", "::1"))
    with start_agent(fenced, docker_client) as agent:
        deployed = Deployed(agent, app_name, sha, calls, docker_client)
        _assert_refused(agent.channel, deployed, PERMISSION_DENIED)
        # Without the secret too (the address is checked first: nothing about the secret leaks).
        with agent_channel(agent.address, certs_dir=agent_certs) as channel:
            _assert_refused(channel, deployed, PERMISSION_DENIED)

    opened = agent_config(home, router="direct", secret=config.secret, allow="10.0.0.0/8,127.0.0.1")
    with start_agent(opened, docker_client) as agent:
        assert agent.stub.ListContainers(pb.ListContainersRequest(app=app_name), timeout=10).containers


def test_bad_allowlist_entry_is_a_config_error(tmp_path):
    with pytest.raises(ValueError, match="allowlist"):
        agent_config(tmp_path, allow="10.0.0.0/33")


def test_build_refused_before_any_git_or_docker_work(deployed, agent_certs):
    """A Build with a real repository and no secret: no image appears, the handler never runs."""
    before_images, before_calls = deployed.state().images, dict(deployed.calls)
    with agent_channel(deployed.agent.address, certs_dir=agent_certs) as channel:
        stub = tugboat_pb2_grpc.TugboatServiceStub(channel)
        code = rpc_code(lambda: list(stub.Build(pb.BuildRequest(
            app=deployed.app, deployment_id=deployed.deployment_id(),
            repo_url=repo_url_of(deployed), commit_sha=deployed.sha, force=True), timeout=30)))
    assert code == UNAUTHENTICATED
    assert deployed.state().images == before_images
    assert dict(deployed.calls) == before_calls


def repo_url_of(deployed) -> str:
    return str(deployed.agent.config.state_dir.parent / f"repo-{deployed.app}")

