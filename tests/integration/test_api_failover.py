"""Clients given several API addresses keep working when a replica dies.

Two real `serversinc-api` processes share one PostgreSQL database and drive one real agent; the real
`serversinc` CLI and the webhook bridge are given both addresses, the first replica first. The first
replica runs no deploy workers (it answers calls only), so killing it interrupts no deployment: what
becomes of a dead replica's own deployments is the queue's story, tested elsewhere; here it is the
clients': a watch that was following the deploy through the first replica resumes on the second
without a line lost or repeated, and every later command and push goes to the second.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet
from serversinc.v1 import app_service_pb2, app_service_pb2_grpc, deployment_pb2
from serversinc.v1 import deployment_service_pb2 as ds
from serversinc.v1 import deployment_service_pb2_grpc

from bridge.main import build
from bridge.settings import WebhookSettings
from client.connection import Connection
from dashboard.api import Client
from tests.bridge.conftest import ThreadedServer
from tests.bridge.github import Sender, push_payload
from tests.conftest import free_port
from tests.integration.conftest import TERMINAL, token_channel
from tests.support.api_process import free_address, start_api, stop_api
from tests.support.sample_app import DOCKERFILE, commit_files, commit_version, repo_url, slow_step

S = deployment_pb2
SERVERSINC = Path(sys.executable).with_name("serversinc")


@dataclass
class Replicas:
    first: subprocess.Popen
    second: subprocess.Popen
    first_address: str
    second_address: str
    token: str

    @property
    def both(self) -> str:
        """The list as a user writes it; the first by host name, so names are resolved too."""
        port = self.first_address.rpartition(":")[2]
        return f"localhost:{port},{self.second_address}"

    def kill_first(self) -> None:
        self.first.send_signal(signal.SIGKILL)
        self.first.wait(10)


@pytest.fixture
def replicas(tmp_path, agent, postgres_url, monkeypatch):
    first_address, second_address = free_address(), free_address()
    # Replicas share one key for the secrets stored encrypted (an app's webhook secret written by one
    # is read by the other); each home would otherwise make a key of its own.
    monkeypatch.setenv("SERVERSINC_SECRET_KEY", Fernet.generate_key().decode())
    # The first replica answers calls but claims no job (see the module docstring).
    monkeypatch.setenv("SERVERSINC_WORKERS", "0")
    first = start_api(tmp_path / "api-1", first_address, agent, postgres_url)
    monkeypatch.delenv("SERVERSINC_WORKERS")
    second = start_api(tmp_path / "api-2", second_address, agent, postgres_url)
    # The first start on an empty database creates the admin token; the second finds it there.
    token = (tmp_path / "api-1" / "api-token").read_text().strip()
    monkeypatch.setenv("SERVERSINC_TOKEN", token)
    yield Replicas(first, second, first_address, second_address, token)
    stop_api(first)
    stop_api(second)


class Second:
    """Stubs to the second replica, for the test's own checks."""

    def __init__(self, replicas: Replicas):
        self.channel = token_channel(replicas.second_address, replicas.token)
        self.apps = app_service_pb2_grpc.AppServiceStub(self.channel)
        self.deployments = deployment_service_pb2_grpc.DeploymentServiceStub(self.channel)

    def finished(self, name: str) -> deployment_pb2.Deployment:
        for _ in self.deployments.WatchDeployment(ds.WatchDeploymentRequest(name=name), timeout=90):
            pass
        dep = self.deployments.GetDeployment(ds.GetDeploymentRequest(name=name))
        assert dep.state in TERMINAL, dep
        return dep


def test_the_cli_goes_on_through_the_second_replica(replicas, control_plane_cli, sample_repo, app_name):
    cli = control_plane_cli(replicas.both)
    commit_files(sample_repo, {"Dockerfile": DOCKERFILE.replace("EXPOSE 8080", slow_step(3) + "EXPOSE 8080")},
                 "a build that lasts a few seconds")
    cli("apps", "create", app_name, "--repo", repo_url(sample_repo))

    # A deploy followed live through the first replica; that replica dies during the build.
    watch = subprocess.Popen([str(SERVERSINC), "deploy", app_name, "--watch"], env=cli.env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    threading.Timer(180, watch.kill).start()  # a hung watch fails the test instead of hanging it
    seen = []
    for line in watch.stdout:
        seen.append(line)
        if line.startswith("==> build"):
            replicas.kill_first()
            break
    seen.extend(watch.stdout)
    stderr = watch.stderr.read()
    assert watch.wait(60) == 0, "".join(seen) + stderr
    assert replicas.first.poll() is not None, "the first replica was never killed:\n" + "".join(seen)
    assert "reconnecting" in stderr and "Traceback" not in stderr, stderr
    # Resumed after the last event seen: every phase is shown once, and the story ends.
    phases = [line.split(":")[0].strip() for line in seen if line.startswith("==> ")]
    assert len(phases) == len(set(phases)) and {"==> build", "==> switch"} <= set(phases), seen
    assert any("succeeded" in line for line in seen), seen

    # Every later command goes to the second replica.
    assert app_name in {a["name"] for a in cli.json("apps", "list", "--json")}
    commit_version(sample_repo, "v2")
    queued = cli.json("deploy", app_name, "--json")
    assert queued["app"] == app_name
    done = cli("deployments", "watch", queued["name"])
    assert "succeeded" in done.stdout and "Traceback" not in done.stderr, done.stdout + done.stderr
    assert Second(replicas).finished(queued["name"]).state == S.DEPLOYMENT_STATE_SUCCEEDED


# The sample app, also printing a numbered line every 0.1 s: a resumed log stream must go on from the
# number it had reached, with none repeated and none missing.
TICKING = DOCKERFILE.replace(
    'CMD ["/bin/busybox","httpd","-f","-p","8080","-h","/www"]',
    'CMD ["/bin/busybox","sh","-c","i=0; while true; do i=$((i+1)); echo tick $i; /bin/busybox sleep 0.1; done & '
    'exec /bin/busybox httpd -f -p 8080 -h /www"]')


def test_logs_follow_resumes_on_the_second_replica(replicas, control_plane_cli, sample_repo, app_name):
    cli = control_plane_cli(replicas.both)
    commit_files(sample_repo, {"Dockerfile": TICKING}, "an app that prints a numbered line every 0.1 s")
    cli("apps", "create", app_name, "--repo", repo_url(sample_repo))
    queued = cli.json("deploy", app_name, "--json")
    assert Second(replicas).finished(queued["name"]).state == S.DEPLOYMENT_STATE_SUCCEEDED

    follow = subprocess.Popen([str(SERVERSINC), "logs", app_name, "--follow", "--tail", "5"], env=cli.env,
                              text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    threading.Timer(120, follow.kill).start()
    ticks = []
    killed_at = None
    for line in follow.stdout:
        ticks.append(int(line.split()[1]))
        if len(ticks) == 10:
            replicas.kill_first()  # the stream ran through the first replica, listed first
            killed_at = ticks[-1]
        if killed_at is not None and ticks[-1] >= killed_at + 30:
            break
    follow.kill()
    stderr = follow.communicate()[1]
    assert killed_at is not None and ticks[-1] >= killed_at + 30, (ticks, stderr)
    assert "log stream lost, reconnecting" in stderr and "Traceback" not in stderr, stderr
    # Consecutive numbers: the lines printed while no stream was open came with the resumed tail,
    # and the tail's lines already shown were not shown again.
    assert ticks == list(range(ticks[0], ticks[0] + len(ticks))), ticks


def test_the_bridge_and_the_dashboard_carry_on_with_a_replica_down(replicas, sample_repo, app_name):
    second = Second(replicas)
    # The dashboard's client, made once and kept (as its cache keeps it), before and after the kill.
    dashboard = Client(Connection(replicas.both, replicas.token))
    second.apps.CreateApp(app_service_pb2.CreateAppRequest(
        app={"name": app_name, "repo_url": repo_url(sample_repo), "branch": "main"}))
    secret = second.apps.GetAppWebhook(app_service_pb2.GetAppWebhookRequest(name=app_name)).secret
    app, connection = build(WebhookSettings(), api=replicas.both)
    port = free_port()
    path = f"/webhooks/github/{app_name}"
    try:
        with ThreadedServer(app, port):
            github = Sender(f"http://127.0.0.1:{port}")
            first = github.send(path, "push", push_payload(repo_url=repo_url(sample_repo),
                                                          after=sample_repo.head.commit.hexsha), secret)
            assert first.status_code == 202, first.text
            assert second.finished(first.json()["deployments"][0]["deployment"]).state == S.DEPLOYMENT_STATE_SUCCEEDED
            assert [a.name for a in dashboard.list_apps()] == [app_name]

            replicas.kill_first()
            sha = commit_version(sample_repo, "v2")
            pushed = github.send(path, "push", push_payload(repo_url=repo_url(sample_repo), after=sha), secret)
            assert pushed.status_code == 202, pushed.text
            dep = second.finished(pushed.json()["deployments"][0]["deployment"])
            assert (dep.state, dep.commit_sha) == (S.DEPLOYMENT_STATE_SUCCEEDED, sha), dep.failure_reason
            assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
            assert [a.name for a in dashboard.list_apps()] == [app_name]
            assert dashboard.get_deployment(dep.name).state == S.DEPLOYMENT_STATE_SUCCEEDED
            assert any(e.state == S.DEPLOYMENT_STATE_SUCCEEDED for e in dashboard.watch(dep.name, 0, timeout=10))
    finally:
        dashboard.connection.close()
        connection.close()
        second.channel.close()


def test_a_listed_replica_that_is_down_gets_a_clear_message(control_plane_cli):
    down, also_down = free_address(), free_address()
    for listed, where in ((down, f"at {down}"), (f"{down},{also_down}", f"at any of {down}, {also_down}")):
        done = control_plane_cli(listed)("apps", "list", check=False)
        assert done.returncode == 1, done.stdout + done.stderr
        assert f"cannot reach the control plane {where}" in done.stderr and "Traceback" not in done.stderr, done.stderr
        assert done.stdout == ""
