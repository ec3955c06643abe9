"""Benchmark: a release rolled out across two servers vs the same release on one server.

One run, on two namespace hosts (tests/support/hosts.py: each its own Docker engine, Tugboat agent
and front door, reached only over its own address) driven by one control plane (SQLite, in this
process, its API over TLS on a free port):
(a) fleet: one app with 4 replicas on servers a and b (2 each); 5 rolling releases (a new commit
    each) while keep-alive clients hit both front doors for the whole run;
(b) baseline: one app with 1 replica on server a; the same 5 releases, keep-alive clients on a's
    front door.
A request fails on anything but a 200 (or no answer). A release's time is CreateDeployment to its
terminal state, as a user waits for it. With a registry (`--registry`, Debian's docker-registry with
TLS from the test CA, the default when it is installed) the image is built once and every server
pulls it by digest; `digests_distinct` counts the image ids the 4 replicas of a release run on the
two engines (1: the same bytes everywhere; 2: each server built the commit itself).

Needs root (namespaces, two more dockerd). Last line: one JSON object with servers, replicas,
releases, requests, failed, rollout_s_median, single_server_s_median, digests_distinct, ...
"""

from __future__ import annotations

import _stack  # noqa: F401  (first: sys.path, see _stack)

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

from serversinc.v1 import (
    app_pb2,
    app_service_pb2,
    app_service_pb2_grpc,
    deployment_pb2,
    deployment_service_pb2,
    deployment_service_pb2_grpc,
    server_service_pb2,
    server_service_pb2_grpc,
)

from client.connection import Connection
from services.api.server import run_server
from services.config import Settings
from services.platform import Platform
from services.registries.service import RegistryService
from tests.conftest import cleanup_app, session_certs
from tests.support.hosts import make_hosts, missing_requirements
from tests.support.sample_app import commit_version, make_sample_repo, repo_url
from tests.support.zd_load import KeepAliveClient

TERMINAL = {deployment_pb2.DEPLOYMENT_STATE_SUCCEEDED, deployment_pb2.DEPLOYMENT_STATE_FAILED,
            deployment_pb2.DEPLOYMENT_STATE_CANCELLED}
CLIENTS_PER_FRONT_DOOR = 2


class Cp:
    def __init__(self, channel):
        self.apps = app_service_pb2_grpc.AppServiceStub(channel)
        self.deployments = deployment_service_pb2_grpc.DeploymentServiceStub(channel)
        self.servers = server_service_pb2_grpc.ServerServiceStub(channel)

    def release(self, app: str) -> tuple[deployment_pb2.Deployment, float]:
        """One deployment of the app's branch head, to its end: (deployment, seconds)."""
        started = time.monotonic()
        dep = self.deployments.CreateDeployment(deployment_service_pb2.CreateDeploymentRequest(parent=f"apps/{app}"),
                                                timeout=30)
        for _ in self.deployments.WatchDeployment(deployment_service_pb2.WatchDeploymentRequest(name=dep.name),
                                                  timeout=600):
            pass
        dep = self.deployments.GetDeployment(deployment_service_pb2.GetDeploymentRequest(name=dep.name), timeout=30)
        seconds = time.monotonic() - started
        if dep.state != deployment_pb2.DEPLOYMENT_STATE_SUCCEEDED:
            raise SystemExit(f"{dep.name} ended {deployment_pb2.DeploymentState.Name(dep.state)}: {dep.failure_reason}")
        return dep, seconds


def image_ids(host, app: str, deployment_id: str) -> set[str]:
    """The image ids the release's running containers on `host`'s engine run."""
    with host.docker() as engine:
        found = engine.containers.list(filters={"label": [f"io.serversinc.app={app}",
                                                          f"io.serversinc.deployment={deployment_id}"]})
        return {c.image.id for c in found}


def run_releases(cp: Cp, app: str, repo, hosts, releases: int) -> dict:
    """`releases` releases of `app` under keep-alive load on `hosts`' front doors."""
    first, _ = cp.release(app)
    host_header = urlsplit(first.url).netloc
    clients = [KeepAliveClient(h.front_door, host_header, pause=0.002, max_seconds=900)
               for h in hosts for _ in range(CLIENTS_PER_FRONT_DOOR)]
    for c in clients:
        c.start()
    seconds, distinct, digests = [], [], set()
    try:
        time.sleep(1.0)
        for i in range(releases):
            commit_version(repo, f"r{i + 1}-{app}")
            dep, took = cp.release(app)
            seconds.append(took)
            deployment_id = dep.name.rsplit("/", 1)[-1]
            ids = set().union(*(image_ids(h, app, deployment_id) for h in hosts))
            distinct.append(len(ids))
            digests.add(dep.image_digest)
            print(f"  release {i + 1}: {took:.2f}s, {len(ids)} image id(s) over {len(hosts)} server(s)"
                  f"{', digest ' + dep.image_digest if dep.image_digest else ''}", flush=True)
        time.sleep(1.0)
    finally:
        samples = [s for c in clients for s in c.stop()]
    failed = [s for s in samples if s.status != 200]
    for s in failed[:5]:
        print(f"  failed request: status {s.status} {s.error}")
    return {"seconds": seconds, "requests": len(samples), "failed": len(failed), "distinct": distinct,
            "digests": sorted(d for d in digests if d)}


def register(cp: Cp, name: str, host) -> None:
    created = cp.servers.CreateServer(server_service_pb2.CreateServerRequest(name=name, address=host.agent_address))
    cp.servers.RegisterServer(server_service_pb2.RegisterServerRequest(
        join_token=created.join_token, agent_secret=host.secret, address=host.agent_address))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--releases", type=int, default=5)
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--registry", choices=("auto", "yes", "no"), default="auto",
                        help="run a test registry so servers pull by digest (auto: when docker-registry is installed)")
    args = parser.parse_args()
    why = missing_requirements()
    if why:
        raise SystemExit(why)
    certs = session_certs()
    os.environ["SERVERSINC_CA"] = str(certs / "ca.pem")
    work = Path(tempfile.mkdtemp(prefix="serversinc-bench-fleet-"))
    tag = uuid.uuid4().hex[:6]
    fleet_app, single_app = f"fleet-{tag}", f"single-{tag}"
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, work, ignore_errors=True)
        hosts = stack.enter_context(make_hosts(2)).hosts
        settings = Settings.from_env(home=work / "cp", database_url=f"sqlite:///{work / 'cp' / 'db.sqlite'}")
        settings.local_agent_address = "127.0.0.1:1"
        settings.metrics_address = "127.0.0.1:0"
        shutil.copytree(certs, settings.home / "certs")
        platform = Platform(settings)
        _, port = stack.enter_context(run_server(platform, port=0))
        token = (settings.home / "api-token").read_text().strip()
        channel = Connection(f"127.0.0.1:{port}", token, unary_timeout=None, root_ca=(certs / "ca.pem").read_bytes()).channel
        stack.callback(channel.close)
        cp = Cp(channel)
        for name, host in zip("ab", hosts):
            register(cp, name, host)
        registry = ""
        if args.registry != "no":
            from tests.support import registry as test_registry

            if test_registry.missing_requirements() and args.registry == "auto":
                print(f"no registry: {test_registry.missing_requirements()}")
            else:
                reg = stack.enter_context(test_registry.run_registry(work / "registry", hosts[0].peer_address, certs,
                                                                     reach_from=hosts))
                RegistryService(platform.db, platform.box).set(reg.address, username=reg.username, password=reg.password)
                registry = reg.address
                print(f"registry at {registry}: build once, pull by digest")

        def cleanup():
            for app in (fleet_app, single_app):
                try:
                    platform.delete_app(app)
                except Exception as err:  # already gone, or an agent down: swept below
                    print(f"cleanup {app}: {err}")
                for host in hosts:
                    with host.docker() as engine:
                        cleanup_app(engine, app)
        stack.callback(cleanup)

        repo = make_sample_repo(work / "fleet-repo", f"r0-{fleet_app}")
        cp.apps.CreateApp(app_service_pb2.CreateAppRequest(app=app_pb2.App(
            name=fleet_app, repo_url=repo_url(repo), branch="main", server="a", servers=["a", "b"],
            replicas=args.replicas)), timeout=30)
        print(f"(a) fleet: {args.replicas} replicas over servers a, b; {args.releases} rolling releases under load", flush=True)
        fleet = run_releases(cp, fleet_app, repo, hosts, args.releases)

        single_repo = make_sample_repo(work / "single-repo", f"r0-{single_app}")
        cp.apps.CreateApp(app_service_pb2.CreateAppRequest(app=app_pb2.App(
            name=single_app, repo_url=repo_url(single_repo), branch="main", server="a")), timeout=30)
        print(f"(b) baseline: 1 replica on server a; {args.releases} releases under load", flush=True)
        single = run_releases(cp, single_app, single_repo, hosts[:1], args.releases)

    rollout = statistics.median(fleet["seconds"])
    baseline = statistics.median(single["seconds"])
    print(f"fleet     requests {fleet['requests']:7d}  failed {fleet['failed']:4d}  release median {rollout:.2f}s  "
          f"image ids per release {fleet['distinct']}")
    print(f"baseline  requests {single['requests']:7d}  failed {single['failed']:4d}  release median {baseline:.2f}s")
    print(json.dumps({
        "servers": 2, "replicas": args.replicas, "releases": args.releases,
        "requests": fleet["requests"], "failed": fleet["failed"],
        "rollout_s_median": round(rollout, 2), "single_server_s_median": round(baseline, 2),
        "digests_distinct": max(fleet["distinct"]), "digests_distinct_per_release": fleet["distinct"],
        "registry": bool(registry), "image_digests": len(fleet["digests"]),
        "single_server_requests": single["requests"], "single_server_failed": single["failed"],
    }))


if __name__ == "__main__":
    main()
