"""Benchmark: two control-plane replicas on one PostgreSQL database, what crossing them costs.

Starts what it needs and removes it after: a PostgreSQL cluster of its own (tests.support.postgres),
two `serversinc-api` processes sharing one home and database, and a Tugboat agent enrolled with a
join token (as scripts/bench/_stack.py does). Replica A runs no deploy workers (SERVERSINC_WORKERS=0),
replica B runs 4: every deployment runs on B, so
- a WatchDeployment on A follows a deployment run on B (cross replica, over LISTEN/NOTIFY), one
  on B follows it in-process (same replica, the baseline), both open at once on the same
  deployment. Latency: an event's stored time (`time`) -> received by the watcher, p95 over the
  build lines of --deployments builds printing --ticks lines each.
- a deployment created on A is claimed by a worker of B (cross: woken by the commit's NOTIFY),
  one created on B by B (same: woken in-process). Job start: the deployment's create_time ->
  start_time (its worker's "started"), --starts of each, one at a time (the queue is idle). These
  deployments resolve a branch that does not exist, so each ends at once (FAILED at RESOLVE).
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import sys
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from datetime import timezone

import _stack
import docker
from serversinc.v1 import (
    app_pb2,
    app_service_pb2,
    app_service_pb2_grpc,
    deployment_pb2,
    deployment_service_pb2,
    deployment_service_pb2_grpc,
)

from client.connection import Connection
from tests.conftest import cleanup_app
from tests.support.postgres import PostgresCluster
from tests.support.sample_app import DOCKERFILE, commit_files, make_sample_repo, repo_url

TICKS = ('RUN ["/bin/busybox","sh","-c","echo {nonce}; i=0; while [ $i -lt {ticks} ]; do echo TICK $i; '
         '/bin/busybox usleep 50000; i=$((i+1)); done"]\n')
TERMINAL = {deployment_pb2.DEPLOYMENT_STATE_SUCCEEDED, deployment_pb2.DEPLOYMENT_STATE_FAILED,
            deployment_pb2.DEPLOYMENT_STATE_CANCELLED, deployment_pb2.DEPLOYMENT_STATE_SUPERSEDED}


class Stubs:
    def __init__(self, address: str, token: str, ca: bytes):
        self.channel = Connection(address, token, unary_timeout=None, root_ca=ca).channel
        self.apps = app_service_pb2_grpc.AppServiceStub(self.channel)
        self.deployments = deployment_service_pb2_grpc.DeploymentServiceStub(self.channel)

    def deploy(self, app: str) -> deployment_pb2.Deployment:
        return self.deployments.CreateDeployment(
            deployment_service_pb2.CreateDeploymentRequest(parent=f"apps/{app}"), timeout=30)

    def finished(self, name: str) -> deployment_pb2.Deployment:
        for _ in self.deployments.WatchDeployment(deployment_service_pb2.WatchDeploymentRequest(name=name),
                                                  timeout=300):
            pass
        dep = self.deployments.GetDeployment(deployment_service_pb2.GetDeploymentRequest(name=name), timeout=30)
        assert dep.state in TERMINAL, dep
        return dep


def seconds(ts) -> float:
    return ts.ToDatetime().replace(tzinfo=timezone.utc).timestamp()


def watch_lag(stubs: Stubs, name: str, out: list[float]) -> None:
    """Appends stored -> received milliseconds of every TICK line of the deployment."""
    call = stubs.deployments.WatchDeployment(deployment_service_pb2.WatchDeploymentRequest(name=name), timeout=300)
    for event in call:
        if event.kind == deployment_pb2.EVENT_KIND_LOG and event.message.startswith("TICK "):
            out.append((time.time() - seconds(event.time)) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deployments", type=int, default=3, help="watched builds")
    parser.add_argument("--ticks", type=int, default=60, help="build lines per watched build (one per 50 ms)")
    parser.add_argument("--starts", type=int, default=20, help="job starts measured per case")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    home = work / "home"
    home.mkdir()
    client = docker.from_env()
    app, quick = f"bench-{uuid.uuid4().hex[:6]}", f"bench-{uuid.uuid4().hex[:6]}"
    cluster = PostgresCluster.start()
    processes: list[_stack.Process] = []
    stubs: list[Stubs] = []
    try:
        url = cluster.create_database(f"bench_{uuid.uuid4().hex[:12]}")
        subprocess.run([sys.executable, str(_stack.ROOT / "scripts" / "certs.py"), "--out", str(home / "certs")],
                       check=True, stdout=subprocess.DEVNULL)
        agent_addr = f"127.0.0.1:{_stack.free_port()}"
        env = {**os.environ, "SERVERSINC_HOME": str(home), "SERVERSINC_METRICS": "127.0.0.1:0",
               "SERVERSINC_DATABASE_URL": url}
        for leaked in ("SERVERSINC_TOKEN", "SERVERSINC_AGENT_SECRET", "TUGBOAT_SECRET_KEY", "SERVERSINC_CA",
                       "SERVERSINC_API_PLAINTEXT"):
            env.pop(leaked, None)
        addresses = {}
        for name, workers in (("a", 0), ("b", 4)):  # one after the other: a bootstraps the schema
            addresses[name] = f"127.0.0.1:{_stack.free_port()}"
            processes.append(_stack.Process(
                f"api-{name}", [str(_stack.BIN / "serversinc-api"), "--listen", addresses[name], "--agent", agent_addr],
                {**env, "SERVERSINC_WORKERS": str(workers)}, home / f"api-{name}.log", addresses[name],
                certs=home / "certs", mutual=False))
            processes[-1].start()
        processes.append(_stack.Process(
            "agent", [str(_stack.BIN / "tugboat"), "--listen", agent_addr, "--home", str(home / "agent"),
                      "--front-door", f"127.0.0.1:{_stack.free_port()}", "--join", addresses["a"],
                      "--join-token-file", str(home / "local-join-token")],
            env, home / "agent.log", agent_addr, certs=home / "certs"))
        processes[-1].start()
        token = (home / "api-token").read_text().strip()
        ca = (home / "certs" / "ca.pem").read_bytes()
        a, b = Stubs(addresses["a"], token, ca), Stubs(addresses["b"], token, ca)
        stubs += [a, b]

        repo = make_sample_repo(work / "repo", "v1")
        for name, branch in ((app, "main"), (quick, "no-such-branch")):
            a.apps.CreateApp(app_service_pb2.CreateAppRequest(app=app_pb2.App(
                name=name, repo_url=repo_url(repo), branch=branch, port=8080, health_interval_ms=20)), timeout=30)

        lag = {"cross": [], "same": []}
        for i in range(args.deployments):
            commit_files(repo, {"Dockerfile": DOCKERFILE + TICKS.format(nonce=uuid.uuid4().hex, ticks=args.ticks)},
                         f"ticking build {i}")
            name = a.deploy(app).name
            watchers = [threading.Thread(target=watch_lag, args=(a, name, lag["cross"])),
                        threading.Thread(target=watch_lag, args=(b, name, lag["same"]))]
            for t in watchers:
                t.start()
            for t in watchers:
                t.join(300)
            dep = b.finished(name)
            assert dep.state == deployment_pb2.DEPLOYMENT_STATE_SUCCEEDED, dep.failure_reason
            print(f"watched build {i + 1}/{args.deployments}: {len(lag['cross'])} / {len(lag['same'])} lines so far",
                  flush=True)

        start = {"cross": [], "same": []}
        for _ in range(args.starts):
            for case, creator in (("cross", a), ("same", b)):
                dep = b.finished(creator.deploy(quick).name)
                start[case].append((seconds(dep.start_time) - seconds(dep.create_time)) * 1000)
        detail = {f"{what}_{case}": {"n": len(values), "p50_ms": round(_stack.percentile(values, 50), 1),
                                     "p95_ms": round(_stack.percentile(values, 95), 1)}
                  for what, data in (("watch", lag), ("job_start", start)) for case, values in data.items()}
        print(json.dumps(detail), flush=True)
    finally:
        for s in stubs:
            s.channel.close()
        for process in reversed(processes):
            process.stop()
        from agent.frontdoor import stop
        from agent.frontdoor_files import FrontDoorFiles

        stop(FrontDoorFiles.for_state(home / "agent"))
        for name in (app, quick):
            cleanup_app(client, name)
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)

    print(json.dumps({
        "watch_p95_ms_cross_replica": round(_stack.percentile(lag["cross"], 95), 1),
        "watch_p95_ms_same_replica": round(_stack.percentile(lag["same"], 95), 1),
        "job_start_ms_cross_replica": round(_stack.percentile(start["cross"], 50), 1),
        "job_start_ms_same_replica": round(_stack.percentile(start["same"], 50), 1),
        "job_start_p95_ms_cross_replica": round(_stack.percentile(start["cross"], 95), 1),
        "job_start_p95_ms_same_replica": round(_stack.percentile(start["same"], 95), 1),
        "watched_lines": len(lag["cross"]), "starts": args.starts,
        "targets": {"watch_p95_ms_cross_replica": 50},
    }))


if __name__ == "__main__":
    main()
