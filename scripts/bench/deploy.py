"""Benchmark: a redeploy through the platform vs the raw Docker SDK sequence, and log latency.

(a) raw: run the new container, wait until it answers, stop + remove the old one (docker SDK).
(b) platform: CreateDeployment of an already-built commit, until WatchDeployment says SUCCEEDED.
Runs a and b alternately, N times each, in one run. Then measures the delay from a build step
printing a log line (a microsecond timestamp it prints itself) to a WatchDeployment client
receiving it. Last line: one JSON object with raw_s, platform_s, ratio, log_p95_ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import _stack
import docker
import grpc
from serversinc.v1 import (
    app_pb2,
    app_service_pb2,
    app_service_pb2_grpc,
    deployment_pb2,
    deployment_service_pb2,
    deployment_service_pb2_grpc,
)

from tests.support.sample_app import commit_files, make_sample_repo, repo_url

LOG_DOCKERFILE = """FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox","--install","-s","/bin"]
RUN echo {nonce} >/dev/null; i=0; while [ $i -lt {lines} ]; do echo "TS $(adjtimex | awk '/tv_sec/{{s=$2}}/tv_usec/{{u=$2}}END{{printf "%d.%06d", s, u}}')"; usleep 50000; i=$((i+1)); done
COPY index.html /www/index.html
EXPOSE 8080
CMD ["/bin/busybox","httpd","-f","-p","8080","-h","/www"]
"""


def watch_until_done(deployments, name: str, on_event=None) -> deployment_pb2.Deployment:
    for event in deployments.WatchDeployment(deployment_service_pb2.WatchDeploymentRequest(name=name), timeout=300):
        if on_event:
            on_event(event, time.time())
    return deployments.GetDeployment(deployment_service_pb2.GetDeploymentRequest(name=name))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--log-builds", type=int, default=2)
    args = parser.parse_args()

    client = docker.from_env()
    app = f"bench-{uuid.uuid4().hex[:6]}"
    work = Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    repo = make_sample_repo(work / "repo", "v1")
    raw_containers = []
    with _stack.platform_stack() as stack:
        channel = stack.channel()
        apps = app_service_pb2_grpc.AppServiceStub(channel)
        deployments = deployment_service_pb2_grpc.DeploymentServiceStub(channel)
        try:
            apps.CreateApp(app_service_pb2.CreateAppRequest(app=app_pb2.App(name=app, repo_url=repo_url(repo), branch="main")))
            first = watch_until_done(deployments, deployments.CreateDeployment(
                deployment_service_pb2.CreateDeploymentRequest(parent=f"apps/{app}", rebuild=True)).name)
            assert first.state == deployment_pb2.DEPLOYMENT_STATE_SUCCEEDED, first.failure_reason
            image = first.image

            def raw_once() -> float:
                started = time.perf_counter()
                c = client.containers.run(image, detach=True, init=True, ports={"8080/tcp": ("127.0.0.1", None)},
                                          labels={"io.serversinc.bench": app})
                c.reload()
                port = c.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]
                _stack.wait_http(f"http://127.0.0.1:{port}/")
                if raw_containers:
                    old = raw_containers.pop()
                    old.stop(timeout=10)
                    old.remove(force=True)
                raw_containers.append(c)
                return time.perf_counter() - started

            def platform_once() -> float:
                started = time.perf_counter()
                dep = deployments.CreateDeployment(deployment_service_pb2.CreateDeploymentRequest(parent=f"apps/{app}"))
                done = watch_until_done(deployments, dep.name)
                elapsed = time.perf_counter() - started
                assert done.state == deployment_pb2.DEPLOYMENT_STATE_SUCCEEDED, done.failure_reason
                assert done.build_skipped
                assert _stack.get(done.url).status_code == 200
                return elapsed

            raw_once(), platform_once()  # warm-up, not counted
            raw, plat = [], []
            for _ in range(args.runs):
                raw.append(raw_once())
                plat.append(platform_once())

            latencies: list[float] = []

            def on_event(event, received: float) -> None:
                if event.kind == deployment_pb2.EVENT_KIND_LOG and event.message.startswith("TS "):
                    latencies.append((received - float(event.message.split()[1])) * 1000)

            for i in range(args.log_builds):
                commit_files(repo, {"Dockerfile": LOG_DOCKERFILE.format(nonce=uuid.uuid4().hex, lines=40)}, f"log bench {i}")
                dep = deployments.CreateDeployment(deployment_service_pb2.CreateDeploymentRequest(parent=f"apps/{app}", rebuild=True))
                done = watch_until_done(deployments, dep.name, on_event)
                assert done.state == deployment_pb2.DEPLOYMENT_STATE_SUCCEEDED, done.failure_reason
        finally:
            try:
                apps.DeleteApp(app_service_pb2.DeleteAppRequest(name=app), timeout=60)
            except grpc.RpcError as err:
                print(f"cleanup: {err.details()}")
            for c in client.containers.list(all=True, filters={"label": f"io.serversinc.bench={app}"}):
                c.remove(force=True)
            channel.close()

    raw_s, platform_s = statistics.median(raw), statistics.median(plat)
    log_p95 = _stack.percentile(latencies, 95)
    print(f"raw docker redeploy    median {raw_s * 1000:7.1f} ms  (n={len(raw)}, min {min(raw) * 1000:.1f}, max {max(raw) * 1000:.1f})")
    print(f"platform redeploy      median {platform_s * 1000:7.1f} ms  (n={len(plat)}, min {min(plat) * 1000:.1f}, max {max(plat) * 1000:.1f})")
    print(f"ratio platform/raw     {platform_s / raw_s:.2f}   (target <= 1.5)")
    print(f"build log line -> watcher: p50 {_stack.percentile(latencies, 50):.1f} ms, p95 {log_p95:.1f} ms "
          f"(n={len(latencies)}, target p95 <= 100 ms)")
    print(json.dumps({
        "raw_s": round(raw_s, 4), "platform_s": round(platform_s, 4), "ratio": round(platform_s / raw_s, 3),
        "log_p95_ms": round(log_p95, 1), "log_p50_ms": round(_stack.percentile(latencies, 50), 1),
        "runs": len(raw), "log_lines": len(latencies),
    }))


if __name__ == "__main__":
    main()
