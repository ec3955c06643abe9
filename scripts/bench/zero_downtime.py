"""Benchmark: zero-downtime redeploys through the platform's HAProxy front door vs the naive way.

One run:
(a) platform: an agent (HAProxy router, front door on a free port) + control plane as processes;
    32 keep-alive connections hit http://127.0.0.1:<front>/ with `Host: <app>.localhost` for the
    whole run while 10 consecutive redeploys go through the control plane (CreateDeployment,
    WatchDeployment until SUCCEEDED).
(b) baseline: the same image run by hand on one fixed host port; 10 times: stop the old container,
    start the new one on the same port; the 32 clients hit that port directly.

The load generator is two processes (one per core) of 16 asyncio connections each, recording
(start time, latency, ok) for every request, so latency can be split into switch windows
(+-0.5 s around each switch) and steady state. A request fails on a non-200 answer, a timeout
or a connection error (the client then reconnects after 10 ms).

Last line: one JSON object with requests, failed, baseline_failed, p99_ms, p99_switch_ms, ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
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

from tests.support.sample_app import make_sample_repo, repo_url

SWITCH_WINDOW = 0.5
CONNECTIONS = 32
PROCESSES = 2
MAX_LOAD_SECONDS = 600  # a hard bound on any load run


# ---- load generator -------------------------------------------------------------------------------
async def _connection(port: int, host_header: str | None, stop, out: list, deadline: float) -> None:
    request = b"GET / HTTP/1.1\r\n" + (f"Host: {host_header}\r\n".encode() if host_header else
                                        f"Host: 127.0.0.1:{port}\r\n".encode()) + b"\r\n"
    reader = writer = None
    while not stop.is_set() and time.time() < deadline:
        started = time.time()
        try:
            if writer is None:
                reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            status = int(head[9:12])
            lower = head.lower()
            length = None
            for line in lower.split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length is None:
                await asyncio.wait_for(reader.read(), 10)  # body until close
                close = True
            else:
                await asyncio.wait_for(reader.readexactly(length), 10)
                close = b"connection: close" in lower or head.startswith(b"HTTP/1.0")
            out.append((started, time.time() - started, status == 200))
            if close:
                writer.close()
                writer = None
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError,
                asyncio.LimitOverrunError):
            out.append((started, time.time() - started, False))
            if writer is not None:
                writer.close()
                writer = None
            await asyncio.sleep(0.01)
    if writer is not None:
        writer.close()


def _load_process(port: int, host_header: str | None, connections: int, stop, ready, queue) -> None:
    out: list = []

    async def main() -> None:
        deadline = time.time() + MAX_LOAD_SECONDS
        ready.set()
        await asyncio.gather(*(_connection(port, host_header, stop, out, deadline)
                               for _ in range(connections)))
    asyncio.run(main())
    queue.put(out)


class Load:
    """32 keep-alive connections in PROCESSES processes, until stop()."""

    def __init__(self, port: int, host_header: str | None) -> None:
        ctx = mp.get_context("fork")
        self.stop_event = ctx.Event()
        self.queue = ctx.Queue()
        self.procs = []
        for _ in range(PROCESSES):
            ready = ctx.Event()
            proc = ctx.Process(target=_load_process, daemon=True, args=(
                port, host_header, CONNECTIONS // PROCESSES, self.stop_event, ready, self.queue))
            proc.start()
            ready.wait(10)
            self.procs.append(proc)

    def stop(self) -> list[tuple[float, float, bool]]:
        self.stop_event.set()
        samples = []
        for _ in self.procs:
            samples.extend(self.queue.get(timeout=60))
        for proc in self.procs:
            proc.join(10)
        return samples


def summarize(samples, switches: list[float]) -> dict:
    ok_lat = [lat * 1000 for _, lat, ok in samples if ok]
    in_switch = [lat * 1000 for t, lat, ok in samples
                 if ok and any(abs((t + lat) - s) <= SWITCH_WINDOW or abs(t - s) <= SWITCH_WINDOW
                               for s in switches)]
    steady = [lat * 1000 for t, lat, ok in samples
              if ok and not any(abs((t + lat) - s) <= SWITCH_WINDOW or abs(t - s) <= SWITCH_WINDOW
                                for s in switches)]
    pct = _stack.percentile
    if os.environ.get("ZD_DEBUG"):
        slow = [(t, lat) for t, lat, ok in samples if ok and lat > 0.3]
        for t, lat in slow[:40]:
            nearest = min(switches, key=lambda s: abs(s - t)) if switches else t
            print(f"    slow request: start {t - nearest:+.3f}s from switch, {lat * 1000:.0f} ms")
        print(f"    {len(slow)} requests > 300 ms")
    return {"requests": len(samples), "failed": sum(1 for *_, ok in samples if not ok),
            "p50_ms": round(pct(ok_lat, 50), 2), "p99_ms": round(pct(ok_lat, 99), 2),
            "p99_switch_ms": round(pct(in_switch, 99), 2), "p99_steady_ms": round(pct(steady, 99), 2),
            "switch_requests": len(in_switch)}


# ---- the two ways of redeploying -------------------------------------------------------------------------
def watch(deployments, name: str) -> tuple[deployment_pb2.Deployment, float | None]:
    switched = None
    for event in deployments.WatchDeployment(
            deployment_service_pb2.WatchDeploymentRequest(name=name), timeout=300):
        if (switched is None and event.kind == deployment_pb2.EVENT_KIND_PHASE
                and event.phase == deployment_pb2.DEPLOYMENT_PHASE_SWITCH):
            switched = time.time()
    return deployments.GetDeployment(deployment_service_pb2.GetDeploymentRequest(name=name)), switched


def run_platform(args, client) -> tuple[dict, str, str]:
    app = f"zd-{uuid.uuid4().hex[:6]}"
    work = Path(tempfile.mkdtemp(prefix="bench-zd-"))
    repo = make_sample_repo(work / "repo", "v1")
    os.environ["TUGBOAT_ROUTER"] = "haproxy"
    # busybox httpd listens with a backlog of ~9: past that, SYNs to the container are dropped
    # and cost a 1 s retransmit. Cap connections per container; the rest queue in HAProxy.
    os.environ["TUGBOAT_SERVER_MAXCONN"] = str(args.server_maxconn)
    with _stack.platform_stack() as stack:
        front_port = int(stack.front_door.rsplit(":", 1)[1])
        channel = stack.channel()
        apps = app_service_pb2_grpc.AppServiceStub(channel)
        deployments = deployment_service_pb2_grpc.DeploymentServiceStub(channel)
        try:
            apps.CreateApp(app_service_pb2.CreateAppRequest(
                app=app_pb2.App(name=app, repo_url=repo_url(repo), branch="main")))
            first, _ = watch(deployments, deployments.CreateDeployment(
                deployment_service_pb2.CreateDeploymentRequest(parent=f"apps/{app}", rebuild=True)).name)
            assert first.state == deployment_pb2.DEPLOYMENT_STATE_SUCCEEDED, first.failure_reason
            # A copy for the baseline: DeleteApp removes the app's images at the end.
            image = f"zdbench-{app}:baseline"
            client.images.get(first.image).tag(f"zdbench-{app}", "baseline")
            print(f"platform: app {app} serves at front door 127.0.0.1:{front_port} "
                  f"(Host: {app}.localhost)", flush=True)
            load = Load(front_port, f"{app}.localhost")
            switches, seconds = [], []
            try:
                time.sleep(args.steady)
                for i in range(args.redeploys):
                    started = time.time()
                    done, switched = watch(deployments, deployments.CreateDeployment(
                        deployment_service_pb2.CreateDeploymentRequest(parent=f"apps/{app}")).name)
                    assert done.state == deployment_pb2.DEPLOYMENT_STATE_SUCCEEDED, done.failure_reason
                    assert switched is not None, "no SWITCH phase event"
                    switches.append(switched)
                    seconds.append(time.time() - started)
                    print(f"  redeploy {i + 1}: {seconds[-1]:.2f}s", flush=True)
                    time.sleep(args.steady)
            finally:
                samples = load.stop()
        finally:
            try:
                apps.DeleteApp(app_service_pb2.DeleteAppRequest(name=app), timeout=60)
            except grpc.RpcError as err:
                print(f"cleanup: {err.details()}")
            channel.close()
    stats = summarize(samples, switches)
    stats["redeploy_s_median"] = round(sorted(seconds)[len(seconds) // 2], 2)
    return stats, image, app


def run_baseline(args, client, image: str, app: str) -> dict:
    """Stop the old container, start the new one on the same host port; clients hit it directly."""
    port = _stack.free_port()
    label = {"io.serversinc.bench": app}

    def start():
        # create + start, never `run`: run would try to pull from a registry.
        container = client.containers.create(image, detach=True, init=True, labels=label,
                                             ports={"8080/tcp": ("127.0.0.1", port)})
        container.start()
        return container
    current = None
    try:
        current = start()
        _stack.wait_http(f"http://127.0.0.1:{port}/")
        load = Load(port, None)
        switches = []
        try:
            time.sleep(args.steady)
            for i in range(args.redeploys):
                started = time.time()
                current.stop(timeout=10)
                current.remove(force=True)
                current = start()
                _stack.wait_http(f"http://127.0.0.1:{port}/")
                switches.append(started)
                print(f"  naive redeploy {i + 1}: {time.time() - started:.2f}s", flush=True)
                time.sleep(args.steady)
        finally:
            samples = load.stop()
    finally:
        for c in client.containers.list(all=True, filters={"label": f"io.serversinc.bench={app}"}):
            c.remove(force=True)
        try:
            client.images.remove(image, force=True)
        except docker.errors.APIError:
            pass
    return summarize(samples, switches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redeploys", type=int, default=10)
    parser.add_argument("--server-maxconn", type=int, default=8,
                        help="HAProxy maxconn per container (0: unlimited)")
    parser.add_argument("--steady", type=float, default=2.0,
                        help="seconds of steady load before and after each redeploy")
    args = parser.parse_args()
    client = docker.from_env()

    print("(a) platform: redeploys through the control plane, traffic through HAProxy", flush=True)
    platform, image, app = run_platform(args, client)
    print("(b) baseline: stop old, start new on the same port, clients hit it directly", flush=True)
    baseline = run_baseline(args, client, image, app)

    for name, s in (("platform", platform), ("baseline", baseline)):
        print(f"{name:9s} requests {s['requests']:7d}  failed {s['failed']:6d}  "
              f"p50 {s['p50_ms']:7.2f} ms  p99 {s['p99_ms']:7.2f} ms  "
              f"p99 switch {s['p99_switch_ms']:7.2f} ms  p99 steady {s['p99_steady_ms']:7.2f} ms")
    ratio = platform["p99_switch_ms"] / platform["p99_steady_ms"]
    print(f"targets: 0 failed of >= 10,000 through the platform "
          f"({'met' if platform['failed'] == 0 and platform['requests'] >= 10_000 else 'NOT met'}); "
          f"p99 switch / steady = {ratio:.2f} (target <= 2: {'met' if ratio <= 2 else 'NOT met'})")
    print(json.dumps({
        "requests": platform["requests"], "failed": platform["failed"],
        "baseline_failed": baseline["failed"], "p99_ms": platform["p99_ms"],
        "p99_switch_ms": platform["p99_switch_ms"], "p99_steady_ms": platform["p99_steady_ms"],
        "p50_ms": platform["p50_ms"], "switch_ratio": round(ratio, 2),
        "redeploys": args.redeploys, "server_maxconn": args.server_maxconn, "redeploy_s_median": platform["redeploy_s_median"],
        "baseline_requests": baseline["requests"], "baseline_p50_ms": baseline["p50_ms"],
        "baseline_p99_ms": baseline["p99_ms"], "baseline_p99_switch_ms": baseline["p99_switch_ms"],
    }))


if __name__ == "__main__":
    main()
