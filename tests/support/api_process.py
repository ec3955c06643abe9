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


def api_command(home: Path, address: str, agent) -> tuple[list[str], dict]:
    """The command line and environment of a control plane on `home` (SQLite in it) that talks to
    `agent` with mutual TLS and its secret."""
    if not (home / "certs").exists():
        shutil.copytree(agent.certs_dir, home / "certs")
    env = {**os.environ, "SERVERSINC_HOME": str(home), "SERVERSINC_AGENT_SECRET": agent.secret,
           "SERVERSINC_METRICS": "127.0.0.1:0"}
    env.pop("SERVERSINC_DATABASE_URL", None)
    return [str(API), "--listen", address, "--agent", agent.address], env


def start_api(home: Path, address: str, agent) -> subprocess.Popen:
    """Starts the control plane and returns once its gRPC port accepts connections."""
    command, env = api_command(home, address, agent)
    proc = subprocess.Popen(command, env=env, stdout=open(home / "api.log", "a"), stderr=subprocess.STDOUT)
    channel = grpc.insecure_channel(address)
    try:
        grpc.channel_ready_future(channel).result(timeout=30)
    finally:
        channel.close()
    return proc


def stop_api(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
