"""A control plane killed mid-deploy leaves a truthful record and the old release serving; the
next start resumes the deployment (on SQLite at once; on PostgreSQL, where another replica may still
hold the claim, once its lease runs out). A second control plane on the same SQLite home refuses to
start."""

from __future__ import annotations

import signal
import subprocess

from serversinc.v1 import deployment_pb2, deployment_service_pb2, deployment_service_pb2_grpc

from tests.integration.conftest import fetch, token_channel
from tests.support.api_process import api_command, free_address, start_api, stop_api
from tests.support.sample_app import DOCKERFILE, commit_files, slow_step

S = deployment_pb2


def test_killed_mid_build_resumes_on_restart(tmp_path, agent, sample_repo, sample_url, app_name, control_plane_cli,
                                            database_url, monkeypatch):
    # A short lease: on PostgreSQL the restarted process takes the job over once the dead one's runs out.
    monkeypatch.setenv("SERVERSINC_JOB_LEASE_SECONDS", "5")
    home = tmp_path / "home"
    home.mkdir()
    address = free_address()
    proc = start_api(home, address, agent, database_url)
    try:
        token = (home / "api-token").read_text().strip()
        cli = control_plane_cli(address, SERVERSINC_TOKEN=token)
        cli("apps", "create", app_name, "--repo", sample_url)
        cli("deploy", app_name, "--watch")
        first = cli.json("apps", "show", app_name, "--json")
        commit_files(sample_repo, {"Dockerfile": DOCKERFILE + slow_step(3),
                                   "index.html": "sample app v2\n"}, "v2, slow build")

        channel = token_channel(address, token)
        stub = deployment_service_pb2_grpc.DeploymentServiceStub(channel)
        dep = stub.CreateDeployment(deployment_service_pb2.CreateDeploymentRequest(parent=f"apps/{app_name}"))
        for event in stub.WatchDeployment(deployment_service_pb2.WatchDeploymentRequest(name=dep.name)):
            if event.kind == S.EVENT_KIND_LOG and "sleep" in event.message:
                break  # inside the slow build step
        channel.close()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert "sample app v1" in fetch(first["url"])  # the old release serves throughout

        proc = start_api(home, address, agent, database_url)
        channel = token_channel(address, token)
        stub = deployment_service_pb2_grpc.DeploymentServiceStub(channel)
        events = list(stub.WatchDeployment(deployment_service_pb2.WatchDeploymentRequest(name=dep.name), timeout=60))
        done = stub.GetDeployment(deployment_service_pb2.GetDeploymentRequest(name=dep.name))
        channel.close()
        assert done.state == S.DEPLOYMENT_STATE_SUCCEEDED, done.failure_reason
        assert any("resuming" in e.message for e in events)
        assert "sample app v2" in fetch(done.url)
        seqs = [e.seq for e in events]
        assert seqs == list(range(1, len(seqs) + 1))  # one gap-free history across both processes
    finally:
        stop_api(proc)


def test_a_second_control_plane_on_the_same_home_refuses_to_start(tmp_path, agent):
    home = tmp_path / "home"
    home.mkdir()
    address = free_address()
    proc = start_api(home, address, agent)
    try:
        command, env = api_command(home, free_address(), agent)
        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 1, second.stderr
        assert f"process {proc.pid} already runs a control plane" in second.stderr
        channel = token_channel(address, (home / "api-token").read_text().strip())
        stub = deployment_service_pb2_grpc.DeploymentServiceStub(channel)
        stub.ListDeployments(deployment_service_pb2.ListDeploymentsRequest(parent="apps/-"), timeout=10)
        channel.close()  # the first one still answers
    finally:
        stop_api(proc)
