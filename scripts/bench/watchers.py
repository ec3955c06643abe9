"""Benchmark: open streams do not starve other calls (1,000 deployment watchers, 200 log followers).

Holds `--deployments` deployments RUNNING in a slow build that prints a TICK line every
`--tick` seconds, then measures CreateDeployment latency (`--creates` calls, one caller, then
`--callers` at once; each call queues behind a held build, so no extra work runs) first with
no watcher open (the baseline), then with `--watchers` WatchDeployment streams open on the held
deployments. The streams are grpc.aio clients spread over `--procs` processes; each reports its
CPU use, so a saturated client (CPU close to 1.0) is visible instead of passing for server lag.
Stream lag: a TICK event's stored time (`time`) -> received by the slowest of its watchers, p95
over the TICKs stored while every watcher was open. Then the agent: `--followers` StreamLogs
--follow streams on a container that prints a line every 0.2 s, and GetInfo p99 (and without
followers). Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import resource
import shutil
import tempfile
import time
import uuid
from concurrent import futures
from pathlib import Path

import _stack
import grpc
from serversinc.v1 import (
    app_pb2,
    app_service_pb2,
    app_service_pb2_grpc,
    deployment_pb2,
    deployment_service_pb2,
    deployment_service_pb2_grpc,
)
from tugboat.v1 import tugboat_pb2, tugboat_pb2_grpc

import docker
from client.connection import Connection, auth_metadata
from common.agent_secret import read_env_secret
from tests.support.agent_client import agent_channel
from tests.support.sample_app import commit_files, make_sample_repo, repo_url

HELD_DOCKERFILE = """FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox","--install","-s","/bin"]
RUN echo {nonce} >/dev/null; i=0; while [ $i -lt {ticks} ]; do echo "TICK $i"; usleep {tick_us}; i=$((i+1)); done
COPY index.html /www/index.html
EXPOSE 8080
CMD ["/bin/busybox","httpd","-f","-p","8080","-h","/www"]
"""

CHATTY_DOCKERFILE = """FROM scratch
COPY busybox /bin/busybox
COPY index.html /www/index.html
EXPOSE 8080
CMD ["/bin/busybox","sh","-c","while true; do echo tick; /bin/busybox usleep 200000; done & exec /bin/busybox httpd -f -p 8080 -h /www"]
"""

LOG = deployment_pb2.EVENT_KIND_LOG
TERMINAL = {deployment_pb2.DEPLOYMENT_STATE_SUCCEEDED, deployment_pb2.DEPLOYMENT_STATE_FAILED,
            deployment_pb2.DEPLOYMENT_STATE_CANCELLED, deployment_pb2.DEPLOYMENT_STATE_SUPERSEDED}


# ---- stream processes (spawned: no grpc state inherited across fork) ---------------------------
async def _watchers(api: str, token: str, ca: bytes, names: list[str], ready, seen: dict) -> None:
    """One WatchDeployment per entry of `names` (TLS verified with `ca`); `seen[(name, seq)] = [stored, slowest, count]`."""
    channels = [grpc.aio.secure_channel(api, grpc.ssl_channel_credentials(ca),
                                        options=[("grpc.use_local_subchannel_pool", 1)])
                for _ in range(max(1, len(names) // 250))]
    stubs = [deployment_service_pb2_grpc.DeploymentServiceStub(c) for c in channels]
    metadata = auth_metadata(token)

    async def one(i: int, name: str) -> None:
        call = stubs[i % len(stubs)].WatchDeployment(
            deployment_service_pb2.WatchDeploymentRequest(name=name), metadata=metadata)
        first = True
        async for event in call:
            now = time.time()
            if first:
                first = False
                ready()
            if event.kind == LOG and event.message.startswith("TICK"):
                record = seen.setdefault((name, event.seq), [event.time.ToMicroseconds() / 1e6, now, 0])
                record[1] = max(record[1], now)
                record[2] += 1

    try:
        await asyncio.gather(*(one(i, n) for i, n in enumerate(names)))
    finally:
        for c in channels:
            await c.close()


async def _followers(agent: str, certs: str, secret: str, app: str, count: int, ready, seen: dict) -> None:
    """`count` StreamLogs --follow of `app`; `seen["lines"]` counts the lines received."""
    certs_dir = Path(certs)
    creds = grpc.ssl_channel_credentials((certs_dir / "ca.pem").read_bytes(),
                                         (certs_dir / "control-plane-key.pem").read_bytes(),
                                         (certs_dir / "control-plane.pem").read_bytes())
    channel = grpc.aio.secure_channel(agent, creds)
    stub = tugboat_pb2_grpc.TugboatServiceStub(channel)
    metadata = (("authorization", f"Bearer {secret}"),)

    async def one() -> None:
        first = True
        async for _ in stub.StreamLogs(tugboat_pb2.StreamLogsRequest(app=app, follow=True, tail=1),
                                       metadata=metadata):
            seen["lines"] = seen.get("lines", 0) + 1
            if first:
                first = False
                ready()

    try:
        await asyncio.gather(*(one() for _ in range(count)))
    finally:
        await channel.close()


def _stream_process(kind: str, args: tuple, out, stop) -> None:
    """Runs the streams until `stop` is set; puts ("ready", n) as streams get their first message,
    ("done", seen, cpu_seconds, wall_seconds, errors)."""
    seen: dict = {}
    errors: list[str] = []
    started = time.monotonic()

    async def main() -> None:
        def ready() -> None:
            out.put(("ready", 1))

        body = _watchers(*args, ready, seen) if kind == "watch" else _followers(*args, ready, seen)
        task = asyncio.ensure_future(body)
        stopped = asyncio.ensure_future(asyncio.get_running_loop().run_in_executor(None, stop.wait))
        await asyncio.wait([task, stopped], return_when=asyncio.FIRST_COMPLETED)
        if task.done() and task.exception() is not None:
            errors.append(repr(task.exception()))
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await stopped

    asyncio.run(main())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out.put(("done", seen, usage.ru_utime + usage.ru_stime, time.monotonic() - started, errors))


class Streams:
    """`total` streams spread over `procs` spawned processes; `wait_ready` until all got a message."""

    def __init__(self, kind: str, procs: int, total: int, make_args) -> None:
        ctx = mp.get_context("spawn")
        self.out, self.stop = ctx.Queue(), ctx.Event()
        self.total = total
        shares = [total // procs + (1 if k < total % procs else 0) for k in range(procs)]
        offset = 0
        self.procs = []
        for share in shares:
            self.procs.append(ctx.Process(target=_stream_process, daemon=True,
                                          args=(kind, make_args(offset, share), self.out, self.stop)))
            offset += share
        for p in self.procs:
            p.start()
        self.results: list[tuple] = []

    def wait_ready(self, timeout: float) -> None:
        ready, deadline = 0, time.monotonic() + timeout
        while ready < self.total:
            message = self.out.get(timeout=max(0.1, deadline - time.monotonic()))
            if message[0] == "ready":
                ready += message[1]
            else:
                raise RuntimeError(f"a stream process ended early: {message[4]}")

    def close(self) -> list[tuple]:
        self.stop.set()
        while len(self.results) < len(self.procs):
            message = self.out.get(timeout=60)
            if message[0] == "done":
                self.results.append(message[1:])
        for p in self.procs:
            p.join(10)
        return self.results


# ---- unary latency ---------------------------------------------------------------------------
def timed_creates(deployments, parents: list[str], n: int, callers: int) -> tuple[list[float], list[str]]:
    """`n` CreateDeployment calls from `callers` threads (ms each) and the names they made."""
    def one(i: int) -> tuple[float, str]:
        started = time.perf_counter()
        dep = deployments.CreateDeployment(deployment_service_pb2.CreateDeploymentRequest(
            parent=parents[i % len(parents)]), timeout=30)
        return (time.perf_counter() - started) * 1000, dep.name

    with futures.ThreadPoolExecutor(callers) as pool:
        done = list(pool.map(one, range(n)))
    return [ms for ms, _ in done], [name for _, name in done]


def cancel_all(deployments, names: list[str]) -> None:
    def one(name: str) -> None:
        try:
            deployments.CancelDeployment(deployment_service_pb2.CancelDeploymentRequest(name=name), timeout=30)
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.FAILED_PRECONDITION:  # already finished
                raise
    with futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(one, names))


def create_round(deployments, parents: list[str], n: int, callers: int) -> dict:
    """Serial, then `callers`-wide; the queued deployments are cancelled after each."""
    serial, made = timed_creates(deployments, parents, n, 1)
    cancel_all(deployments, made)
    wide, made = timed_creates(deployments, parents, n, callers)
    cancel_all(deployments, made)
    return {"p50": _stack.percentile(serial, 50), "p99": _stack.percentile(serial, 99),
            "wide_p50": _stack.percentile(wide, 50), "wide_p99": _stack.percentile(wide, 99)}


def timed_getinfo(agent, n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        agent.GetInfo(tugboat_pb2.GetInfoRequest(), timeout=10)
        times.append((time.perf_counter() - started) * 1000)
    return times


def stream_lag(results: list[tuple], per_name: dict[str, int], since: float,
               until: float) -> tuple[list[float], int, float]:
    """(lag ms of each TICK stored between `since` and `until` that every watcher of its
    deployment received, such TICKs some watcher missed, the busiest stream process's CPU
    fraction)."""
    merged: dict = {}
    for seen, _, _, _ in results:
        for key, (stored, slowest, count) in seen.items():
            record = merged.setdefault(key, [stored, slowest, 0])
            record[1] = max(record[1], slowest)
            record[2] += count
    lags, missed = [], 0
    for (name, _), (stored, slowest, count) in merged.items():
        if not since <= stored <= until:
            continue
        if count == per_name[name]:
            lags.append((slowest - stored) * 1000)
        else:
            missed += 1
    busiest = max(cpu / wall for _, cpu, wall, _ in results)
    return lags, missed, busiest


def wait_ticking(deployments, name: str, timeout: float = 120) -> None:
    """Until `name` has stored a TICK line (its build is in the slow RUN step)."""
    for event in deployments.WatchDeployment(deployment_service_pb2.WatchDeploymentRequest(name=name),
                                             timeout=timeout):
        if event.kind == LOG and event.message.startswith("TICK"):
            return
        if event.kind == deployment_pb2.EVENT_KIND_STATE and event.state in TERMINAL:
            raise RuntimeError(f"{name} ended before it was held: {event.message}")
    raise RuntimeError(f"{name} stream ended")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--deployments", type=int, default=4, help="held deployments the watchers share")
    parser.add_argument("--procs", type=int, default=2, help="processes the watcher clients run in")
    parser.add_argument("--creates", type=int, default=200)
    parser.add_argument("--callers", type=int, default=20)
    parser.add_argument("--tick", type=float, default=0.5, help="seconds between the held builds' TICK lines")
    parser.add_argument("--followers", type=int, default=200)
    parser.add_argument("--getinfo", type=int, default=200)
    parser.add_argument("--hold", type=int, default=900, help="seconds a held build lasts at most")
    args = parser.parse_args()

    docker_client = docker.from_env()
    tag = uuid.uuid4().hex[:6]
    held_apps = [f"bw-{tag}-{i}" for i in range(args.deployments)]
    chatty = f"bw-{tag}-logs"
    work = Path(tempfile.mkdtemp(prefix="bench-watchers-"))
    out: dict = {}
    with _stack.platform_stack() as stack:
        conn = Connection(stack.api, stack.token, unary_timeout=None, root_ca=stack.ca)
        apps = app_service_pb2_grpc.AppServiceStub(conn.channel)
        deployments = deployment_service_pb2_grpc.DeploymentServiceStub(conn.channel)
        agent = tugboat_pb2_grpc.TugboatServiceStub(agent_channel(
            stack.agent, certs_dir=stack.home / "certs", secret=read_env_secret(stack.home / "agent" / ".env")))
        held: list[str] = []
        try:
            # A serving container that prints a line every 0.2 s, for the log followers.
            repo = make_sample_repo(work / chatty, "logs")
            commit_files(repo, {"Dockerfile": CHATTY_DOCKERFILE}, "chatty")
            apps.CreateApp(app_service_pb2.CreateAppRequest(app=app_pb2.App(name=chatty, repo_url=repo_url(repo), branch="main")))
            first = deployments.CreateDeployment(deployment_service_pb2.CreateDeploymentRequest(parent=f"apps/{chatty}"))
            for _ in deployments.WatchDeployment(deployment_service_pb2.WatchDeploymentRequest(name=first.name), timeout=120):
                pass
            done = deployments.GetDeployment(deployment_service_pb2.GetDeploymentRequest(name=first.name))
            assert done.state == deployment_pb2.DEPLOYMENT_STATE_SUCCEEDED, done.failure_reason

            ticks = int(args.hold / args.tick)
            for app in held_apps:
                repo = make_sample_repo(work / app, "held")
                commit_files(repo, {"Dockerfile": HELD_DOCKERFILE.format(
                    nonce=uuid.uuid4().hex, ticks=ticks, tick_us=int(args.tick * 1e6))}, "slow build")
                apps.CreateApp(app_service_pb2.CreateAppRequest(app=app_pb2.App(name=app, repo_url=repo_url(repo), branch="main")))
                held.append(deployments.CreateDeployment(
                    deployment_service_pb2.CreateDeploymentRequest(parent=f"apps/{app}")).name)
            for name in held:
                wait_ticking(deployments, name)
            parents = [f"apps/{a}" for a in held_apps]

            # Warm-up (not counted), then the baseline with no watcher open.
            cancel_all(deployments, timed_creates(deployments, parents, 20, 1)[1])
            base = create_round(deployments, parents, args.creates, args.callers)
            print(f"no watchers:      CreateDeployment p50 {base['p50']:.1f} ms p99 {base['p99']:.1f} ms; "
                  f"{args.callers} callers p50 {base['wide_p50']:.1f} p99 {base['wide_p99']:.1f} ms")

            names = [held[i % len(held)] for i in range(args.watchers)]
            per_name = {n: names.count(n) for n in held}
            opened = time.monotonic()
            watchers = Streams("watch", args.procs, args.watchers,
                               lambda offset, share: (stack.api, stack.token, stack.ca, names[offset:offset + share]))
            try:
                watchers.wait_ready(timeout=120)
                since = time.time()
                print(f"{args.watchers} watchers open in {time.monotonic() - opened:.1f} s "
                      f"({args.procs} client processes)")
                loaded = create_round(deployments, parents, args.creates, args.callers)
                time.sleep(3 * args.tick)  # a few more TICKs stored while every watcher is open
                until = time.time() - 1.0  # a TICK stored after this may still be on its way
            finally:
                results = watchers.close()
            lags, missed, busiest = stream_lag(results, per_name, since, until)
            errors = [e for r in results for e in r[3]]
            print(f"{args.watchers} watchers: CreateDeployment p50 {loaded['p50']:.1f} ms p99 {loaded['p99']:.1f} ms; "
                  f"{args.callers} callers p50 {loaded['wide_p50']:.1f} p99 {loaded['wide_p99']:.1f} ms")
            print(f"stream lag (stored -> slowest watcher): p50 {_stack.percentile(lags, 50):.1f} ms "
                  f"p95 {_stack.percentile(lags, 95):.1f} ms over {len(lags)} events, {missed} missed by some "
                  f"watcher; busiest client process CPU {busiest:.2f}; errors {errors[:3]}")

            info_base = timed_getinfo(agent, args.getinfo)
            followers = Streams("follow", 1, args.followers, lambda offset, share: (
                stack.agent, str(stack.home / "certs"), read_env_secret(stack.home / "agent" / ".env"),
                chatty, share))
            try:
                followers.wait_ready(timeout=60)
                info = timed_getinfo(agent, args.getinfo)
            finally:
                follow_results = followers.close()
            lines = sum(r[0].get("lines", 0) for r in follow_results)
            print(f"agent GetInfo p99 {_stack.percentile(info_base, 99):.1f} ms with no follower, "
                  f"{_stack.percentile(info, 99):.1f} ms with {args.followers} followers "
                  f"({lines} lines received, follower CPU {max(c / w for _, c, w, _ in follow_results):.2f})")

            out = {
                "watchers": args.watchers,
                "create_p50_ms": round(loaded["p50"], 2),
                "create_p99_ms": round(loaded["p99"], 2),
                "stream_lag_p95_ms": round(_stack.percentile(lags, 95), 1),
                "create_p99_ms_no_watchers": round(base["p99"], 2),
                "log_followers": args.followers,
                "getinfo_p99_ms": round(_stack.percentile(info, 99), 2),
                "create_p99_ms_20_callers": round(loaded["wide_p99"], 2),
                "create_p99_ms_20_callers_no_watchers": round(base["wide_p99"], 2),
                "getinfo_p99_ms_no_followers": round(_stack.percentile(info_base, 99), 2),
                "lag_events": len(lags), "lag_events_missed": missed,
                "client_procs": args.procs, "client_cpu_max": round(busiest, 2),
            }
        finally:
            try:
                cancel_all(deployments, held)
                for app in held_apps + [chatty]:
                    _delete_when_idle(apps, app)
            except grpc.RpcError as err:
                print(f"cleanup: {err.details()}")
            conn.close()
            for app in held_apps + [chatty]:
                for c in docker_client.containers.list(all=True, filters={"label": f"io.serversinc.app={app}"}):
                    c.remove(force=True)
                for image in docker_client.images.list(filters={"label": f"io.serversinc.app={app}"}):
                    docker_client.images.remove(image.id, force=True)
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out))


def _delete_when_idle(apps, app: str, timeout: float = 60) -> None:
    """DeleteApp, retried while a cancelled deployment is still winding down."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            apps.DeleteApp(app_service_pb2.DeleteAppRequest(name=app), timeout=60)
            return
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                return
            if err.code() != grpc.StatusCode.FAILED_PRECONDITION or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


if __name__ == "__main__":
    main()
