"""Shared by the benchmarks: start a real agent and control plane as processes on free ports.

Each benchmark starts what it needs with these helpers and cleans it up, so it runs on any
machine where scripts/test.sh (or run.sh) has set up the venv and a Docker engine.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # tests.support (sample app helpers) lives at the repository root

from client.connection import Connection

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(address: str, timeout: float = 30, certs: Path | None = None) -> None:
    """Until the server's health check answers; over mutual TLS (as the control plane) with `certs`."""
    if certs is None:
        channel = grpc.insecure_channel(address)
    else:
        creds = grpc.ssl_channel_credentials((certs / "ca.pem").read_bytes(), (certs / "control-plane-key.pem").read_bytes(),
                                             (certs / "control-plane.pem").read_bytes())
        channel = grpc.secure_channel(address, creds)
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    finally:
        channel.close()


@dataclass
class Stack:
    home: Path
    api: str
    agent: str
    front_door: str

    @property
    def token(self) -> str:
        """The admin API token the control plane wrote on first start."""
        return (self.home / "api-token").read_text().strip()

    def channel(self) -> grpc.Channel:
        """A channel to the control plane that sends the API token on every call (the clients'
        own library; no default deadline: each benchmark sets its own)."""
        return Connection(self.api, self.token, unary_timeout=None).channel


@contextmanager
def platform_stack():
    """Control plane + agent as two processes, set up exactly as scripts/run.sh does (mutual TLS,
    the agent enrolled with a join token), in a temp home, on free ports."""
    home = Path(tempfile.mkdtemp(prefix="serversinc-bench-"))
    agent_addr = f"127.0.0.1:{free_port()}"
    # Each stack has its own front door, so benchmarks never clash with a running platform.
    front_door = f"127.0.0.1:{free_port()}"
    api_addr = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "SERVERSINC_HOME": str(home), "SERVERSINC_METRICS": "127.0.0.1:0"}
    for leaked in ("SERVERSINC_TOKEN", "SERVERSINC_AGENT_SECRET", "TUGBOAT_SECRET_KEY"):
        env.pop(leaked, None)
    logs = (home / "logs")
    logs.mkdir()
    subprocess.run([sys.executable, str(ROOT / "scripts" / "certs.py"), "--out", str(home / "certs")],
                   check=True, stdout=subprocess.DEVNULL)
    procs = []
    try:
        procs.append(subprocess.Popen(
            [str(BIN / "serversinc-api"), "--listen", api_addr, "--agent", agent_addr],
            env=env, stdout=open(logs / "api.log", "w"), stderr=subprocess.STDOUT))
        wait_healthy(api_addr)
        procs.append(subprocess.Popen(
            [str(BIN / "tugboat"), "--listen", agent_addr, "--home", str(home / "agent"), "--front-door", front_door,
             "--join", api_addr, "--join-token-file", str(home / "local-join-token")],
            env=env, stdout=open(logs / "agent.log", "w"), stderr=subprocess.STDOUT))
        wait_healthy(agent_addr, certs=home / "certs")
        yield Stack(home, api_addr, agent_addr, front_door)
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(home, ignore_errors=True)
        from agent.frontdoor import stop
        from agent.frontdoor_files import FrontDoorFiles

        stop(FrontDoorFiles.for_state(home / "agent"))  # the agent started it; it outlives the agent


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1))))
    return ordered[k]


def get(url: str, timeout: float = 5):
    """GET over loopback only: `http://<app>.localhost:PORT` goes to 127.0.0.1:PORT with that Host
    header (glibc does not resolve *.localhost)."""
    from urllib.parse import urlsplit

    import requests

    parts = urlsplit(url)
    assert parts.hostname in ("127.0.0.1", "localhost") or (parts.hostname or "").endswith(".localhost"), url
    return requests.get(f"http://127.0.0.1:{parts.port or 80}{parts.path or '/'}", headers={"Host": parts.netloc},
                        timeout=timeout)


def wait_http(url: str, timeout: float = 10) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(url, timeout=1).status_code < 400:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(url)
        time.sleep(0.01)
