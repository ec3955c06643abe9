"""A git remote that accepts and never answers: the build fails, nothing hangs, nothing leaks."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import grpc
import pytest
from tugboat.v1 import tugboat_pb2 as pb

from tests.support.agent_calls import build_seen, wait_until
from tests.support.sample_app import make_sample_repo, repo_url

pytestmark = pytest.mark.docker

SHA = "0123456789abcdef0123456789abcdef01234567"


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never sends a byte; closes them all at stop."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def drop_accepted(self) -> int:
        """Close the connections accepted so far (they are this process's fds, not the agent's)."""
        conns, self.accepted = self.accepted, []
        for conn in conns:
            conn.close()
        return len(conns)

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self.sock.close()
        self._thread.join(timeout=5)
        self.drop_accepted()


@pytest.fixture
def silent():
    server = SilentServer()
    yield server
    server.close()


def _build(stub, app, url, deployment_id, timeout):
    request = pb.BuildRequest(app=app, deployment_id=deployment_id, repo_url=url, commit_sha=SHA,
                              dockerfile="Dockerfile")
    events = []
    try:
        for ev in stub.Build(request, timeout=timeout):
            events.append(build_seen(ev))
    except grpc.RpcError as exc:
        return events, exc.code()
    return events, None


def _usage() -> tuple[int, int]:
    return len(os.listdir("/proc/self/task")), len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("scheme", ["http", "git"])
def test_a_silent_remote_is_killed_at_the_deadline_and_frees_the_app(agent, app_name, silent,
                                                                      tmp_path, scheme):
    url = f"{scheme}://127.0.0.1:{silent.port}/repo.git"
    events, code = _build(agent.stub, app_name, url, 1, timeout=1.5)
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert events and events[0].line.startswith("fetching ")
    assert silent.accepted, "git never connected to the silent remote"
    # The fetch was killed and the app's cache lock freed: the next build of the app runs.
    real = make_sample_repo(tmp_path / "real", "v1")
    request = pb.BuildRequest(app=app_name, deployment_id=2, repo_url=repo_url(real),
                              commit_sha=real.head.commit.hexsha, dockerfile="Dockerfile")
    last = build_seen(list(agent.stub.Build(request, timeout=60))[-1])
    assert last.error == "" and last.result.image == f"{app_name}:{real.head.commit.hexsha}"


def test_forty_silent_remotes_leak_no_thread_or_fd(agent, app_name, silent):
    urls = [f"{scheme}://127.0.0.1:{silent.port}/r.git" for scheme in ("http", "git")]
    # Warm up: the server's and channel's threads and sockets exist before we count.
    for i in range(4):
        _build(agent.stub, app_name, urls[i % 2], 100 + i, timeout=0.3)
    silent.drop_accepted()
    threads, fds = _usage()
    for i in range(40):
        _, code = _build(agent.stub, app_name, urls[i % 2], 200 + i, timeout=0.3)
        assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert silent.drop_accepted() > 0, "git never reached the silent remote"
    assert agent.stub.GetInfo(pb.GetInfoRequest(), timeout=2).docker_version
    # Every killed fetch is reaped: no git process, thread or pipe outlives its build (the last
    # build's handler may still be finishing: wait for that, then count).
    assert wait_until(lambda: not _our_gits(silent.port), timeout=10), _our_gits(silent.port)
    wait_until(lambda: _usage()[0] <= threads + 2 and _usage()[1] <= fds + 4, timeout=10)
    after_threads, after_fds = _usage()
    assert after_threads <= threads + 2, (threads, after_threads)
    assert after_fds <= fds + 4, (fds, after_fds)


def _our_gits(port: int) -> list[str]:
    return [p.name for p in Path("/proc").iterdir() if p.name.isdigit() and _is_our_git(p, port)]


def _is_our_git(proc: Path, port: int) -> bool:
    try:
        return f"127.0.0.1:{port}" in (proc / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
