"""Benchmark: the GitHub webhook bridge.

Starts everything itself on free 127.0.0.1 ports (agent + control plane via _stack, the bridge as a
`python -m bridge.main` subprocess) and cleans up.

(b) push to live: a signed push for a new commit changing one file (index.html) of the sample app →
    time until the app's URL serves the new page; median of --live-runs (warm build cache).
(a) enqueue latency: --requests signed pushes from --senders concurrent senders, each with a unique
    delivery id for an app whose repository exists (the pushed commit is real); each answer is 2xx only
    once its deployment is enqueued. Superseding keeps the queue short (each push supersedes the
    queued ones), so this does not turn into a thousand builds. Measures the HTTP round trip only.
For the split of (a), two more measurements with the same 20 senders: the bridge alone, answering
from an in-memory stand-in for the control plane (bridge_only_*), and CreateDeployment called
straight over gRPC without the bridge (create_rpc_*).
Last line: one JSON object with p50_ms, p99_ms, requests, push_to_live_s (and the split).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import _stack
import docker
import requests
from serversinc.v1 import (
    app_pb2,
    app_service_pb2,
    app_service_pb2_grpc,
    deployment_pb2,
    deployment_service_pb2,
    deployment_service_pb2_grpc,
)

from tests.conftest import cleanup_app
from tests.support.sample_app import commit_version, make_sample_repo, repo_url
from tests.bridge.github import encode, headers, new_delivery, push_payload

SECRET = os.environ.get("BENCH_WEBHOOK_SECRET") or "bench-" + uuid.uuid4().hex  # the stand-in inherits it


def loopback_get(url: str, timeout: float = 2) -> requests.Response:
    """GET an app URL, direct (`http://127.0.0.1:PORT`) or through the front door
    (`http://<app>.localhost:PORT`, sent to 127.0.0.1:PORT with that Host header). Loopback only."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not (host in ("127.0.0.1", "localhost") or host.endswith(".localhost")):
        raise ValueError(f"not a loopback URL: {url}")
    target = f"http://127.0.0.1:{parts.port or 80}{parts.path or '/'}"
    return requests.get(target, headers={"Host": parts.netloc}, timeout=timeout)


def start_bridge(stack, port: int) -> subprocess.Popen:
    env = {**os.environ, "SERVERSINC_HOME": str(stack.home), "SERVERSINC_WEBHOOK_SECRET": SECRET,
           "PYTHONPATH": str(_stack.ROOT)}
    env.pop("SERVERSINC_TOKEN", None)  # the bridge reads the stack's api-token file, as run.sh's would
    env.pop("SERVERSINC_CA", None)  # ...and the stack's certs/ca.pem
    proc = subprocess.Popen([sys.executable, "-m", "bridge.main", "--listen", f"127.0.0.1:{port}",
                             "--api", stack.api, "--log-level", "warning"], cwd=_stack.ROOT, env=env,
                            stdout=open(stack.home / "logs" / "webhook.log", "w"), stderr=subprocess.STDOUT)
    _stack.wait_http(f"http://127.0.0.1:{port}/healthz", timeout=20)
    return proc


def post(conn: http.client.HTTPConnection, body: bytes, hdrs: dict) -> tuple[int, bytes]:
    conn.request("POST", "/webhooks/github", body=body, headers=hdrs)
    response = conn.getresponse()
    return response.status, response.read()


def push_to_live(base_port: int, deployments, repo, url: str, runs: int) -> list[float]:
    times = []
    conn = http.client.HTTPConnection("127.0.0.1", base_port, timeout=30)
    for i in range(runs):
        version = f"live-{i}-{uuid.uuid4().hex[:6]}"
        sha = commit_version(repo, version)
        body = encode(push_payload(repo_url=repo_url(repo), after=sha, message=f"release {version}"))
        hdrs = headers("push", body, SECRET, new_delivery())
        started = time.perf_counter()
        status, answer = post(conn, body, hdrs)
        assert status == 202, (status, answer)
        deadline = started + 60
        while True:
            try:
                if version in loopback_get(url, timeout=2).text:
                    break
            except requests.RequestException:
                pass
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{version} never served; {answer!r}")
            time.sleep(0.005)
        times.append(time.perf_counter() - started)
        name = json.loads(answer)["deployments"][0]["deployment"]
        for _ in deployments.WatchDeployment(deployment_service_pb2.WatchDeploymentRequest(name=name), timeout=120):
            pass  # let it finish (stop the old release) before the next run
        print(f"  push to live {i + 1}/{runs}: {times[-1]:.3f} s", flush=True)
    conn.close()
    return times


def enqueue_latency(port: int, repo, sha: str, total: int, senders: int) -> tuple[list[float], dict]:
    bodies = []
    for _ in range(total):
        body = encode(push_payload(repo_url=repo_url(repo), after=sha, message="bench push"))
        bodies.append((body, headers("push", body, SECRET, new_delivery())))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    cursor = iter(range(total))
    start = threading.Barrier(senders)

    def sender():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine, codes = [], {}
        start.wait()
        while True:
            with lock:
                i = next(cursor, None)
            if i is None:
                break
            body, hdrs = bodies[i]
            t0 = time.perf_counter()
            status, _ = post(conn, body, hdrs)
            mine.append(time.perf_counter() - t0)
            codes[status] = codes.get(status, 0) + 1
        conn.close()
        with lock:
            latencies.extend(mine)
            for k, v in codes.items():
                statuses[k] = statuses.get(k, 0) + v

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, statuses


def serve_stub(port: int, repo: str) -> None:
    """The bridge's real HTTP app over an in-memory control plane: measures the bridge alone."""
    import itertools

    import uvicorn

    from bridge.app import create_app
    from bridge.handler import Created
    from bridge.matching import AppRef
    from bridge.settings import WebhookSettings

    counter = itertools.count(1)

    class StandIn:
        def apps(self, refresh=False):
            return [AppRef("bench", repo, "main")]

        def app(self, name):
            return self.apps()[0]

        def webhook_secret(self, name, max_age=None):
            return SECRET

        def create_deployment(self, request):
            return Created(request.app, f"deployments/{next(counter)}")

    uvicorn.run(create_app(StandIn(), WebhookSettings(global_secret=SECRET)), host="127.0.0.1", port=port,
                log_level="warning", access_log=False)


def bridge_only(repo, total: int, senders: int) -> list[float]:
    port = _stack.free_port()
    env = {**os.environ, "PYTHONPATH": str(_stack.ROOT), "BENCH_WEBHOOK_SECRET": SECRET}
    proc = subprocess.Popen([sys.executable, __file__, "--serve-stub", str(port), repo_url(repo)], env=env)
    try:
        _stack.wait_http(f"http://127.0.0.1:{port}/healthz", timeout=20)
        enqueue_latency(port, repo, repo.head.commit.hexsha, min(100, total), senders)
        latencies, statuses = enqueue_latency(port, repo, repo.head.commit.hexsha, total, senders)
        assert set(statuses) == {202}, statuses
        return latencies
    finally:
        proc.terminate()
        proc.wait(10)


def create_rpc(deployments, app: str, sha: str, total: int, senders: int) -> list[float]:
    """CreateDeployment as the bridge calls it, straight over gRPC from `senders` threads."""
    latencies: list[float] = []
    lock = threading.Lock()
    cursor = iter(range(total))

    def sender():
        while True:
            with lock:
                i = next(cursor, None)
            if i is None:
                return
            delivery = new_delivery()
            t0 = time.perf_counter()
            deployments.CreateDeployment(deployment_service_pb2.CreateDeploymentRequest(
                parent=f"apps/{app}", rebuild=True, commit_sha=sha, trigger=deployment_pb2.DEPLOYMENT_TRIGGER_WEBHOOK,
                request_id=f"{delivery}:{app}", delivery_id=delivery, supersede_queued=True), timeout=60)
            with lock:
                latencies.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-stub":
        return serve_stub(int(sys.argv[2]), sys.argv[3])
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--live-runs", type=int, default=5)
    args = parser.parse_args()

    client = docker.from_env()
    app = f"bench-{uuid.uuid4().hex[:6]}"
    work = Path(tempfile.mkdtemp(prefix="bench-webhook-"))
    repo = make_sample_repo(work / "repo", "v1")
    bridge = None
    try:
        with _stack.platform_stack() as stack:
            channel = stack.channel()
            apps = app_service_pb2_grpc.AppServiceStub(channel)
            deployments = deployment_service_pb2_grpc.DeploymentServiceStub(channel)
            try:
                port = _stack.free_port()
                bridge = start_bridge(stack, port)
                apps.CreateApp(app_service_pb2.CreateAppRequest(
                    app=app_pb2.App(name=app, repo_url=repo_url(repo), branch="main")))

                # First deploy (through the bridge): builds the image, warms the build cache, gives the URL.
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                body = encode(push_payload(repo_url=repo_url(repo), after=repo.head.commit.hexsha))
                status, answer = post(conn, body, headers("push", body, SECRET, new_delivery()))
                conn.close()
                assert status == 202, (status, answer)
                first = json.loads(answer)["deployments"][0]["deployment"]
                for _ in deployments.WatchDeployment(deployment_service_pb2.WatchDeploymentRequest(name=first), timeout=300):
                    pass
                dep = deployments.GetDeployment(deployment_service_pb2.GetDeploymentRequest(name=first))
                assert dep.state == deployment_pb2.DEPLOYMENT_STATE_SUCCEEDED, dep.failure_reason
                url = apps.GetApp(app_service_pb2.GetAppRequest(name=app)).url or dep.url
                print(f"app {app} serves at {url}", flush=True)

                print(f"(b) push to live, {args.live_runs} runs", flush=True)
                live = push_to_live(port, deployments, repo, url, args.live_runs)

                print(f"(a) enqueue latency: {args.requests} pushes, {args.senders} senders", flush=True)
                head = repo.head.commit.hexsha
                enqueue_latency(port, repo, head, min(100, args.requests), args.senders)  # warm-up, not counted
                t0 = time.perf_counter()
                latencies, statuses = enqueue_latency(port, repo, head, args.requests, args.senders)
                wall = time.perf_counter() - t0
                ok = sum(v for k, v in statuses.items() if 200 <= k < 300)
                listed = deployments.ListDeployments(deployment_service_pb2.ListDeploymentsRequest(parent=f"apps/{app}", page_size=1000))
                states: dict[str, int] = {}
                for d in listed.deployments:
                    key = deployment_pb2.DeploymentState.Name(d.state).removeprefix("DEPLOYMENT_STATE_")
                    states[key] = states.get(key, 0) + 1
                print(f"  statuses {statuses}; {args.requests / wall:.0f} req/s; deployments by state {states}", flush=True)
                assert ok == args.requests, statuses
                print("  split: CreateDeployment straight over gRPC, same senders", flush=True)
                rpc = create_rpc(deployments, app, head, args.requests, args.senders)
            finally:
                if bridge is not None:
                    bridge.terminate()
                    try:
                        bridge.wait(10)
                    except subprocess.TimeoutExpired:
                        bridge.kill()
                channel.close()

    finally:
        cleanup_app(client, app)  # after the agent stopped: no deploy can start another container

    print("  split: the bridge alone (in-memory control plane stand-in)", flush=True)
    alone = [x * 1000 for x in bridge_only(repo, args.requests, args.senders)]
    rpc_ms = [x * 1000 for x in rpc]
    ms = [x * 1000 for x in latencies]
    result = {
        "p50_ms": round(_stack.percentile(ms, 50), 2),
        "p99_ms": round(_stack.percentile(ms, 99), 2),
        "requests": len(ms),
        "push_to_live_s": round(statistics.median(live), 3),
        "push_to_live_runs_s": [round(x, 3) for x in live],
        "senders": args.senders,
        "bridge_only_p50_ms": round(_stack.percentile(alone, 50), 2),
        "bridge_only_p99_ms": round(_stack.percentile(alone, 99), 2),
        "create_rpc_p50_ms": round(_stack.percentile(rpc_ms, 50), 2),
        "create_rpc_p99_ms": round(_stack.percentile(rpc_ms, 99), 2),
        "targets": {"p99_ms": 50, "push_to_live_s": 3},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
