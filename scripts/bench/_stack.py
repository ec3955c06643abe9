"""Shared by the benchmarks: start a real agent and control plane as processes on free ports.

Each benchmark starts what it needs with these helpers and cleans it up, so it runs on any
machine where scripts/test.sh (or run.sh) has set up the venv and a Docker engine.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Python puts a script's folder first on sys.path, and this folder holds queue.py (the queue
# benchmark's name): first, it would stand in for the standard library's `queue` in every benchmark
# (urllib3, grpc, concurrent.futures import it). Every benchmark imports this module before those,
# so it moves the folder to the end, where `import _stack` is still found.
_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if str(Path(p or ".").resolve()) != _HERE] + [_HERE]
if str(getattr(sys.modules.get("queue"), "__file__", "")).startswith(_HERE):
    del sys.modules["queue"]  # imported through the folder before this ran: forget it

import os  # noqa: E402
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
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


def wait_healthy(address: str, timeout: float = 30, certs: Path | None = None, mutual: bool = True) -> None:
    """Until the server's health check answers; over TLS verified with `certs`' CA, as the control
    plane (its client certificate: mutual TLS, the agent) unless `mutual` is False (the API)."""
    if certs is None:
        channel = grpc.insecure_channel(address)
    else:
        client = ((certs / "control-plane-key.pem").read_bytes(), (certs / "control-plane.pem").read_bytes()) \
            if mutual else ()
        channel = grpc.secure_channel(address, grpc.ssl_channel_credentials((certs / "ca.pem").read_bytes(), *client))
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    finally:
        channel.close()


@dataclass
class Process:
    """One control process of a stack: its command line, environment and log, and the process
    running it now (None while it is stopped). The benchmarks of faults stop and start it again."""

    name: str
    command: list[str]
    env: dict
    log: Path
    address: str
    certs: Path | None = None  # the agent answers over mutual TLS only, the API over TLS
    mutual: bool = True  # False: server-side TLS only (the API, which takes API tokens)
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        """Start it (again, with the same command and home) and return once its health check answers."""
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        wait_healthy(self.address, certs=self.certs, mutual=self.mutual)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
        """Send `sig` and wait for it to exit (SIGKILL once `timeout` is over)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


@dataclass
class Stack:
    home: Path
    api: str
    agent: str
    front_door: str
    processes: dict[str, Process] = field(default_factory=dict)  # "api", "agent"

    @property
    def token(self) -> str:
        """The admin API token the control plane wrote on first start."""
        return (self.home / "api-token").read_text().strip()

    @property
    def front_door_files(self):
        """The run directory of the front door service the agent started (it outlives the agent)."""
        from agent.frontdoor_files import FrontDoorFiles

        return FrontDoorFiles.for_state(self.home / "agent")

    def channel(self) -> grpc.Channel:
        """A channel to the control plane that sends the API token on every call (the clients'
        own library, TLS verified with the stack's CA; no default deadline: each benchmark sets its own)."""
        return Connection(self.api, self.token, unary_timeout=None, root_ca=self.ca).channel

    @property
    def ca(self) -> bytes:
        """The stack's CA certificate, which verifies the API's TLS certificate."""
        return (self.home / "certs" / "ca.pem").read_bytes()


@contextmanager
def platform_stack():
    """Control plane + agent as two processes, set up exactly as scripts/run.sh does (mutual TLS,
    the agent enrolled with a join token), in a temp home, on free ports. Everything it started is
    stopped on exit, the front door service too (the agent started it detached)."""
    home = Path(tempfile.mkdtemp(prefix="serversinc-bench-"))
    agent_addr = f"127.0.0.1:{free_port()}"
    # Each stack has its own front door, so benchmarks never clash with a running platform.
    front_door = f"127.0.0.1:{free_port()}"
    api_addr = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "SERVERSINC_HOME": str(home), "SERVERSINC_METRICS": "127.0.0.1:0"}
    for leaked in ("SERVERSINC_TOKEN", "SERVERSINC_AGENT_SECRET", "TUGBOAT_SECRET_KEY", "SERVERSINC_CA",
                   "SERVERSINC_API_PLAINTEXT"):
        env.pop(leaked, None)
    logs = (home / "logs")
    logs.mkdir()
    subprocess.run([sys.executable, str(ROOT / "scripts" / "certs.py"), "--out", str(home / "certs")],
                   check=True, stdout=subprocess.DEVNULL)
    stack = Stack(home, api_addr, agent_addr, front_door)
    stack.processes["api"] = Process(
        "api", [str(BIN / "serversinc-api"), "--listen", api_addr, "--agent", agent_addr],
        env, logs / "api.log", api_addr, certs=home / "certs", mutual=False)
    stack.processes["agent"] = Process(
        "agent", [str(BIN / "tugboat"), "--listen", agent_addr, "--home", str(home / "agent"),
                  "--front-door", front_door, "--join", api_addr,
                  "--join-token-file", str(home / "local-join-token")],
        env, logs / "agent.log", agent_addr, certs=home / "certs")
    try:
        stack.processes["api"].start()
        stack.processes["agent"].start()
        yield stack
    finally:
        for process in reversed(stack.processes.values()):
            process.stop()
        from agent.frontdoor import stop

        stop(stack.front_door_files)  # before the home goes: its pid files and locks are in it
        shutil.rmtree(home, ignore_errors=True)


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
