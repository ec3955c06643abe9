"""A real Tugboat agent process for fault tests: only a process can be killed with SIGKILL."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from tugboat.v1 import tugboat_pb2_grpc

from tests.conftest import free_port, session_certs
from tests.support.agent_client import agent_channel

TUGBOAT = Path(sys.executable).parent / "tugboat"


@dataclass
class AgentProcess:
    proc: subprocess.Popen
    stub: tugboat_pb2_grpc.TugboatServiceStub
    channel: grpc.Channel
    front_door: str

    def end(self, sig: int) -> None:
        """Send `sig` and wait for the process to exit."""
        self.channel.close()
        self.proc.send_signal(sig)
        self.proc.wait(30)

    def close(self) -> None:
        """Teardown: whatever state it is in, it is gone afterwards."""
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def run_agent(home: Path, front_door: str, secret: str) -> AgentProcess:
    """`tugboat` as a process; returns once it prints that it listens (it adopted the front door)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUGBOAT_")}
    env["TUGBOAT_SECRET_KEY"] = secret
    proc = subprocess.Popen(
        [str(TUGBOAT), "--listen", f"127.0.0.1:{port}", "--home", str(home), "--router", "haproxy",
         "--front-door", front_door, "--certs", str(session_certs())],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("tugboat listening"):
            break
    else:
        proc.wait(30)
        pytest.fail("agent did not start:\n" + "".join(seen))
    # Keep draining its output so a chatty agent never blocks on a full pipe.
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    channel = agent_channel(f"127.0.0.1:{port}", certs_dir=session_certs(), secret=secret)
    return AgentProcess(proc, tugboat_pb2_grpc.TugboatServiceStub(channel), channel, front_door)
