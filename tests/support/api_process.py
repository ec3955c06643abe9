"""A real `serversinc-api` process on a temp home, driving a test agent: for tests that kill it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import grpc

API = Path(sys.executable).with_name("serversinc-api")


def free_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def api_env(home: Path, database_url: str | None = None) -> dict:
    """The environment of a control plane on `home`: its database is `database_url`, or SQLite in
    `home` when None (never a URL inherited from the test's own environment)."""
    env = {**os.environ, "SERVERSINC_HOME": str(home), "SERVERSINC_METRICS": "127.0.0.1:0"}
    env.pop("SERVERSINC_DATABASE_URL", None)
    if database_url:
        env["SERVERSINC_DATABASE_URL"] = database_url
    return env


def api_command(home: Path, address: str, agent, database_url: str | None = None) -> tuple[list[str], dict]:
    """The command line and environment of a control plane on `home` (database: see api_env) that
    talks to `agent` with mutual TLS and its secret."""
    if not (home / "certs").exists():
        shutil.copytree(agent.certs_dir, home / "certs")
    env = {**api_env(home, database_url), "SERVERSINC_AGENT_SECRET": agent.secret}
    return [str(API), "--listen", address, "--agent", agent.address], env


def db_command(home: Path, action: str, database_url: str | None = None) -> subprocess.CompletedProcess:
    """Runs `serversinc-api db <action>` (upgrade, current) to the end."""
    return subprocess.run([str(API), "db", action], env=api_env(home, database_url), capture_output=True,
                          text=True, timeout=120)


def tls_channel(address: str, certs_dir: Path) -> grpc.Channel:
    """A raw channel to a control plane over TLS, verified with `certs_dir`'s ca.pem, built by the
    clients' own client.connection (no token: for readiness probes and unauthenticated calls)."""
    from client.connection import open_channel

    return open_channel(address, (Path(certs_dir) / "ca.pem").read_bytes())


def wait_ready(address: str, certs_dir: Path, timeout: float = 30) -> None:
    """Until a TLS handshake with the control plane at `address` succeeds (grpc.FutureTimeoutError)."""
    channel = tls_channel(address, certs_dir)
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
    finally:
        channel.close()


def start_api(home: Path, address: str, agent, database_url: str | None = None) -> subprocess.Popen:
    """Starts the control plane and returns once its gRPC port accepts TLS connections."""
    command, env = api_command(home, address, agent, database_url)
    proc = subprocess.Popen(command, env=env, stdout=open(home / "api.log", "a"), stderr=subprocess.STDOUT)
    wait_ready(address, home / "certs")
    return proc


def stop_api(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
