"""Benchmark: the HTTPS front door under steady load while redeploys and certificate renewals happen.

One run, on the run.sh stack (agent + control plane as processes, `_stack.platform_stack`) with an
HTTPS front door on a free port and Debian's pebble as the ACME directory (short-lived
certificates, so renewals happen during the run; HTTP-01 answered by the front door itself):
- one app with a domain, deployed once; its certificate issued by pebble;
- keep-alive HTTPS clients (TLS verified against pebble's root, the domain as SNI) and the same
  number of plain HTTP clients to the same app, side by side, for the whole run;
- a pool of WebSockets over HTTPS (wss) opened before the first redeploy and held through all of
  them (the app's drain deadline is longer than the run: none may close early);
- `--redeploys` redeploys through the control plane, spaced so that `--renewals` renewals of the
  certificate fall among them; a renewal is counted when a new TLS handshake is served a
  certificate with a new serial (measured from outside, not taken from the agent's word).

A request fails on a non-200 answer, a timeout or a connection error. The WebSocket pool uses the
app of tests/support/ws_app.py (H6's WebSocket-capable sample); without it the run has no pool
(ws_connections 0) and says so.

Last line: JSON with requests, failed, p99_ms_https, p99_ms_http, renewals, ws_connections,
ws_closed_early (and the details: requests and failures per protocol, redeploy seconds, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path

import _stack
from serversinc.v1 import (
    app_pb2,
    app_service_pb2,
    app_service_pb2_grpc,
    deployment_pb2,
    deployment_service_pb2,
    deployment_service_pb2_grpc,
)

from tests.support import pebble as pebble_support
from tests.support.https_client import HttpsKeepAliveClient, secure_websocket, served_cert
from tests.support.sample_app import make_sample_repo, repo_url
from tests.support.zd_load import KeepAliveClient

try:  # H6's WebSocket-capable sample app
    from tests.support.ws_app import WS_PATH, make_ws_repo
except ImportError:  # pragma: no cover - before it lands
    WS_PATH, make_ws_repo = "", None

DOMAIN = "bench.example.com"
MAX_RUN_SECONDS = 600  # a hard bound on the whole load phase


def deploy(deployments, app: str, rebuild: bool = False) -> float:
    started = time.monotonic()
    name = deployments.CreateDeployment(deployment_service_pb2.CreateDeploymentRequest(
        parent=f"apps/{app}", rebuild=rebuild)).name
    for _ in deployments.WatchDeployment(deployment_service_pb2.WatchDeploymentRequest(name=name), timeout=300):
        pass
    done = deployments.GetDeployment(deployment_service_pb2.GetDeploymentRequest(name=name))
    if done.state != deployment_pb2.DEPLOYMENT_STATE_SUCCEEDED:
        raise RuntimeError(f"deployment {name} {deployment_pb2.DeploymentState.Name(done.state)}: "
                           f"{done.failure_reason}")
    return time.monotonic() - started


class SerialWatch(threading.Thread):
    """Handshakes anew every `interval` and records each new serial served for the domain."""

    def __init__(self, port: int, domain: str, root: bytes, interval: float = 0.25) -> None:
        super().__init__(daemon=True, name="serial-watch")
        self.port, self.domain, self.root, self.interval = port, domain, root, interval
        self.serials: list[str] = []
        self.errors = 0
        self._halt = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + MAX_RUN_SECONDS
        while not self._halt.is_set() and time.monotonic() < deadline:
            try:
                serial = served_cert(self.port, self.domain, self.root).serial
                if not self.serials or self.serials[-1] != serial:
                    self.serials.append(serial)
            except OSError:
                self.errors += 1
            self._halt.wait(self.interval)

    @property
    def renewals(self) -> int:
        return max(0, len(self.serials) - 1)

    def stop(self) -> None:
        self._halt.set()
        self.join(10)


def p99_ms(samples) -> float:
    return round(_stack.percentile([(s.end - s.start) * 1000 for s in samples], 99), 2)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(interval)


def run(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-https-"))
    https_port, acme_port = _stack.free_port(), _stack.free_port()
    pebble_dir = work / "pebble"
    # The agent the stack starts reads these: an HTTPS front door, pebble as its ACME directory.
    os.environ.update({
        "TUGBOAT_HTTPS_FRONT_DOOR": f"127.0.0.1:{https_port}",
        "TUGBOAT_ACME_DIRECTORY": pebble_support.directory_url(acme_port),
        "TUGBOAT_ACME_CA_BUNDLE": str(pebble_support.ca_bundle(pebble_dir)),
        "TUGBOAT_ACME_RETRY_SECONDS": "2",
    })
    app = f"bench-https-{uuid.uuid4().hex[:6]}"
    ws_pool = args.ws if make_ws_repo is not None else 0
    repo = (make_ws_repo if make_ws_repo is not None else make_sample_repo)(work / "repo", "v1")
    with _stack.platform_stack() as stack:
        http_port = int(stack.front_door.rpartition(":")[2])
        with pebble_support.run_pebble(pebble_dir, http_port, validity=args.validity,
                                       acme_port=acme_port) as pebble:
            channel = stack.channel()
            apps = app_service_pb2_grpc.AppServiceStub(channel)
            deployments = deployment_service_pb2_grpc.DeploymentServiceStub(channel)
            apps.CreateApp(app_service_pb2.CreateAppRequest(app=app_pb2.App(
                name=app, repo_url=repo_url(repo), branch="main", port=8080, domains=[DOMAIN],
                drain_seconds=args.drain, hsts_max_age_seconds=300)))
            first = deploy(deployments, app, rebuild=True)
            print(f"first deploy (build) {first:.1f}s", flush=True)
            root = pebble.root_pem()

            def issued():
                try:
                    served_cert(https_port, DOMAIN, root)
                    return True
                except OSError:  # the default certificate fails verification until it is issued
                    return False
            wait_for(issued, 60, "the first certificate")
            watch = SerialWatch(https_port, DOMAIN, root)
            watch.start()
            https = [HttpsKeepAliveClient(https_port, DOMAIN, root, pause=0.002, max_seconds=MAX_RUN_SECONDS)
                     for _ in range(args.clients)]
            plain = [KeepAliveClient(stack.front_door, f"{DOMAIN}:{http_port}", pause=0.002,
                                     max_seconds=MAX_RUN_SECONDS) for _ in range(args.clients)]
            for client in https + plain:
                client.start()
            pool = [secure_websocket(https_port, DOMAIN, root, WS_PATH) for _ in range(ws_pool)]
            print(f"load: {args.clients} HTTPS + {args.clients} HTTP keep-alive clients, {len(pool)} wss "
                  f"connections held; certificates live {args.validity}s", flush=True)
            seconds, started = [], time.monotonic()
            gap = args.validity * args.renewals / max(1, args.redeploys) * 0.8
            try:
                for i in range(args.redeploys):
                    seconds.append(deploy(deployments, app))
                    print(f"  redeploy {i + 1}: {seconds[-1]:.2f}s, renewals so far {watch.renewals}",
                          flush=True)
                    time.sleep(max(0.0, started + gap * (i + 1) - time.monotonic()))
                wait_for(lambda: watch.renewals >= args.renewals, args.validity * (args.renewals + 2),
                         f"{args.renewals} renewals")
                closed_early = sum(ws.is_closed() for ws in pool)
                # New wss connections after the last redeploy land on the serving release.
                fresh = [secure_websocket(https_port, DOMAIN, root, WS_PATH) for _ in range(min(5, ws_pool))]
                for ws in fresh:
                    ws.close()
            finally:
                https_samples = [s for c in https for s in c.stop()]
                http_samples = [s for c in plain for s in c.stop()]
                watch.stop()
                for ws in pool:
                    ws.close()
                channel.close()
    https_failed = sum(1 for s in https_samples if s.status != 200)
    http_failed = sum(1 for s in http_samples if s.status != 200)
    return {
        "requests": len(https_samples) + len(http_samples),
        "failed": https_failed + http_failed,
        "p99_ms_https": p99_ms(https_samples),
        "p99_ms_http": p99_ms(http_samples),
        "renewals": watch.renewals,
        "ws_connections": len(pool),
        "ws_closed_early": closed_early,
        "requests_https": len(https_samples), "failed_https": https_failed,
        "requests_http": len(http_samples), "failed_http": http_failed,
        "p50_ms_https": round(_stack.percentile([(s.end - s.start) * 1000 for s in https_samples], 50), 2),
        "p50_ms_http": round(_stack.percentile([(s.end - s.start) * 1000 for s in http_samples], 50), 2),
        "redeploys": len(seconds), "redeploy_seconds_max": round(max(seconds), 2) if seconds else 0,
        "https_connections_opened": sum(c.connections for c in https),
        "certificate_validity_seconds": args.validity,
        "ws_pool": "tests/support/ws_app.py" if make_ws_repo is not None else "missing (no pool)",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redeploys", type=int, default=10)
    parser.add_argument("--renewals", type=int, default=3)
    parser.add_argument("--validity", type=int, default=15, help="certificate lifetime in seconds (pebble)")
    parser.add_argument("--clients", type=int, default=8, help="keep-alive clients per protocol")
    parser.add_argument("--ws", type=int, default=20, help="WebSockets held through the redeploys")
    parser.add_argument("--drain", type=int, default=900,
                        help="the app's drain deadline, longer than the run (seconds)")
    result = run(parser.parse_args())
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
