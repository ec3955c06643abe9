"""A control plane killed mid-deploy leaves a truthful record and the old release serving; the
next start resumes the deployment."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import grpc
from serversinc.v1 import deployment_pb2, deployment_service_pb2, deployment_service_pb2_grpc

from tests.integration.conftest import fetch, token_channel
from tests.support.sample_app import DOCKERFILE, commit_files

S = deployment_pb2
API = Path(sys.executable).with_name("serversinc-api")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_api(home: Path, address: str, agent) -> subprocess.Popen:
    if not (home / "certs").exists():
        shutil.copytree(agent.certs_dir, home / "certs")  # mutual TLS with the test agent
    env = {**os.environ, "SERVERSINC_HOME": str(home), "SERVERSINC_AGENT_SECRET": agent.secret,
           "SERVERSINC_METRICS": "127.0.0.1:0"}
    proc = subprocess.Popen([str(API), "--listen", address, "--agent", agent.address], env=env,
                            stdout=open(home / "api.log", "a"), stderr=subprocess.STDOUT)
    channel = grpc.insecure_channel(address)
    grpc.channel_ready_future(channel).result(timeout=30)
    channel.close()
    return proc


def test_killed_mid_build_resumes_on_restart(tmp_path, agent, sample_repo, sample_url, app_name, control_plane_cli):
    home = tmp_path / "home"
    home.mkdir()
    address = f"127.0.0.1:{free_port()}"
    proc = start_api(home, address, agent)
    try:
        token = (home / "api-token").read_text().strip()
        cli = control_plane_cli(address, SERVERSINC_TOKEN=token)
        cli("apps", "create", app_name, "--repo", sample_url)
        cli("deploy", app_name, "--watch")
        first = cli.json("apps", "show", app_name, "--json")
        commit_files(sample_repo, {"Dockerfile": DOCKERFILE + 'RUN ["/bin/busybox","sleep","3"]\n',
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

        proc = start_api(home, address, agent)
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
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
