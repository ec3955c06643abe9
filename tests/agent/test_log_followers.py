"""Many StreamLogs --follow streams on a serving container: the agent keeps answering, every
follower gets every new line, and a follower that goes away gives back what it held."""

from __future__ import annotations

import asyncio
import threading
import uuid

import grpc
import pytest
from tugboat.v1 import tugboat_pb2 as pb

import docker
from agent.log_follow import LogReader
from common.phases import Phase
from tests.support.agent_calls import build, deploy, wait_until
from tests.support.sample_app import commit_files, make_sample_repo

pytestmark = pytest.mark.docker

FOLLOWERS = 50

QUIET = """FROM scratch
COPY busybox /bin/busybox
COPY index.html /www/index.html
CMD ["/bin/busybox","sh","-c","echo ready; exec /bin/busybox httpd -f -p 8080 -h /www"]
"""


@pytest.fixture
def serving(agent, app_name, tmp_path):
    repo = make_sample_repo(tmp_path / "repo")
    sha = commit_files(repo, {"Dockerfile": QUIET}, "prints one line, then serves")
    assert build(agent.stub, app_name, repo, sha, 901)[-1].error == ""
    done = deploy(agent.stub, app_name, sha, 901)[-1]
    assert done.phase is Phase.DONE, done.error
    return done


class Follower:
    """One StreamLogs --follow (tail=1) drained by a thread into `lines`."""

    def __init__(self, stub, app: str) -> None:
        self.lines: list[str] = []
        self.call = stub.StreamLogs(pb.StreamLogsRequest(app=app, follow=True, tail=1))
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        try:
            for entry in self.call:
                self.lines.append(entry.text)
        except grpc.RpcError:
            pass


def _agent_load(agent) -> tuple[int, int]:
    """(Docker log streams open in this process — each one a daemon connection —, tasks on the
    agent's event loop). Counted, not the process's file descriptors: those move with every
    client pool in the test process and would make the test flaky."""
    async def tasks() -> int:
        return len(asyncio.all_tasks())
    return LogReader.open_streams, agent.server.call(tasks(), timeout=10)


def _print_in_container(container_id: str, text: str) -> None:
    """The app's process prints `text`: written to PID 1's stdout, which is the container's log.
    A client of its own, closed at once: the descriptors counted are the agent's."""
    client = docker.from_env()
    try:
        result = client.containers.get(container_id).exec_run(
            ["/bin/busybox", "sh", "-c", f"echo {text} > /proc/1/fd/1"])
    finally:
        client.close()
    assert result.exit_code == 0, result.output


def _cycle(agent, app_name, container_id) -> None:
    """FOLLOWERS followers: all get a new line, half leave, the rest get the next one, all leave."""
    streams_before, tasks_before = _agent_load(agent)
    followers = [Follower(agent.stub, app_name) for _ in range(FOLLOWERS)]
    assert wait_until(lambda: all(f.lines for f in followers), timeout=30)  # tail=1: the last line
    # Each follower holds a task and its own connection to the Docker daemon, so the counts
    # the test ends with mean something.
    streams_open, tasks_open = _agent_load(agent)
    assert streams_open == streams_before + FOLLOWERS and tasks_open >= tasks_before + FOLLOWERS

    assert agent.stub.GetInfo(pb.GetInfoRequest(), timeout=10).running_containers >= 1

    mark = f"mark-{uuid.uuid4().hex[:8]}"
    _print_in_container(container_id, mark)
    assert wait_until(lambda: all(f.lines[1:] == [mark] for f in followers), timeout=30)

    for f in followers[:FOLLOWERS // 2]:
        f.call.cancel()
    second = f"mark-{uuid.uuid4().hex[:8]}"
    _print_in_container(container_id, second)
    assert wait_until(lambda: all(f.lines[1:] == [mark, second] for f in followers[FOLLOWERS // 2:]),
                      timeout=30)
    for f in followers[FOLLOWERS // 2:]:
        f.call.cancel()
    for f in followers:
        f.thread.join(timeout=10)
        assert not f.thread.is_alive()
    assert all(f.lines[1:] == [mark] for f in followers[:FOLLOWERS // 2])


def test_fifty_followers_get_every_line_and_leave_nothing_behind(agent, app_name, serving):
    streams_idle, tasks_idle = _agent_load(agent)
    for _ in range(2):
        _cycle(agent, app_name, serving.container_id)
        # Every follower's daemon connection and task end with its stream (the idle count may
        # itself hold a task or two still finishing the fixture's deploy: never more after).
        def settled() -> bool:
            streams, tasks = _agent_load(agent)
            return streams == streams_idle and tasks <= tasks_idle
        assert wait_until(settled, timeout=30), (_agent_load(agent), streams_idle, tasks_idle)
