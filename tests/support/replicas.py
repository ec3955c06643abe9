"""Control-plane replicas for tests: real `serversinc-api` processes on one PostgreSQL database.

Replicas share one home (PostgreSQL has no single-instance lock): the first to start writes the
admin API token and the secret box key there, and every replica reads the same ones, as replicas
of one deployment share their secrets. Each replica logs to a file of its own in that home.
The command line and environment are tests.support.api_process's (the agent's certificates and
secret); `env` adds per-replica settings such as SERVERSINC_WORKERS or SERVERSINC_JOB_LEASE_SECONDS.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import grpc
from serversinc.v1 import app_pb2, app_service_pb2, app_service_pb2_grpc, deployment_pb2
from serversinc.v1 import deployment_service_pb2 as ds
from serversinc.v1 import deployment_service_pb2_grpc

from client.connection import Connection
from tests.support.api_process import api_command, free_address, wait_ready

TERMINAL = {
    deployment_pb2.DEPLOYMENT_STATE_SUCCEEDED,
    deployment_pb2.DEPLOYMENT_STATE_FAILED,
    deployment_pb2.DEPLOYMENT_STATE_CANCELLED,
    deployment_pb2.DEPLOYMENT_STATE_SUPERSEDED,
}


class Replica:
    """One `serversinc-api` process and stubs to it (the clients' own connection, with the token)."""

    def __init__(self, name: str, home: Path, agent, database_url: str, **env: object):
        self.name, self.home, self.address = name, home, free_address()
        command, base_env = api_command(home, self.address, agent, database_url)
        self.log = home / f"{name}.log"
        with open(self.log, "a") as out:
            self.proc = subprocess.Popen(command, env={**base_env, **{k: str(v) for k, v in env.items()}},
                                         stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_ready(self.address, home / "certs", timeout=60)
        except grpc.FutureTimeoutError:
            self.proc.kill()
            raise AssertionError(f"replica {name} did not start:\n{self.log_tail()}") from None
        self.channel = Connection(self.address, (home / "api-token").read_text().strip(), unary_timeout=None).channel
        self.apps = app_service_pb2_grpc.AppServiceStub(self.channel)
        self.deployments = deployment_service_pb2_grpc.DeploymentServiceStub(self.channel)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""

    def create_app(self, name: str, url: str, **fields) -> app_pb2.App:
        app = app_pb2.App(name=name, repo_url=url, branch=fields.pop("branch", "main"), **fields)
        return self.apps.CreateApp(app_service_pb2.CreateAppRequest(app=app), timeout=30)

    def deploy(self, app: str) -> deployment_pb2.Deployment:
        return self.deployments.CreateDeployment(ds.CreateDeploymentRequest(parent=f"apps/{app}"), timeout=30)

    def get(self, name: str) -> deployment_pb2.Deployment:
        return self.deployments.GetDeployment(ds.GetDeploymentRequest(name=name), timeout=30)

    def cancel(self, name: str) -> deployment_pb2.Deployment:
        return self.deployments.CancelDeployment(ds.CancelDeploymentRequest(name=name), timeout=30)

    def follow(self, name: str, timeout: float = 120):
        """The deployment's events from the first, live until its terminal event."""
        return self.deployments.WatchDeployment(ds.WatchDeploymentRequest(name=name), timeout=timeout)

    def finished(self, name: str, timeout: float = 120) -> tuple[deployment_pb2.Deployment, list]:
        """The deployment once terminal, and every event of its history."""
        events = list(self.follow(name, timeout))
        dep = self.get(name)
        assert dep.state in TERMINAL, dep
        return dep, events

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, its claims stay leased until the lease runs out."""
        self.channel.close()
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM and wait (its workers, senders and listeners stop); SIGKILL if it hangs."""
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
