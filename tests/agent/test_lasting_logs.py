"""Lasting logs on a real engine: a replaced release's output is read from the agent's archive
(StreamLogs deployment_id, with tail and since), a crashed-and-restarted container's earlier
output survives its replacement, and the archive keeps only the last releases of an app."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from tugboat.v1 import tugboat_pb2 as pb

import docker
from agent.log_archive import ArchiveLimits
from common.phases import Phase
from tests.conftest import agent_config, start_agent
from tests.support.agent_calls import build, deploy, wait_until
from tests.support.sample_app import commit_files, make_sample_repo

pytestmark = pytest.mark.docker

# Five numbered lines 5 ms apart (distinct timestamps), then it serves.
CHATTY = """FROM scratch
COPY busybox /bin/busybox
COPY index.html /www/index.html
CMD ["/bin/busybox","sh","-c","for i in 1 2 3 4 5; do echo $VERSION line $i; /bin/busybox usleep 5000; done; exec /bin/busybox httpd -f -p 8080 -h /www"]
"""


def _image(agent, app, tmp_path) -> str:
    repo = make_sample_repo(tmp_path / "repo")
    sha = commit_files(repo, {"Dockerfile": CHATTY}, "prints five lines, then serves")
    assert build(agent.stub, app, repo, sha, 1)[-1].error == ""
    return sha


def _release(agent, app, sha, deployment_id, version):
    done = deploy(agent.stub, app, sha, deployment_id, env={"VERSION": version})[-1]
    assert done.phase is Phase.DONE, done.error
    return done


def _logs(agent, app, **fields) -> list[pb.LogEntry]:
    return list(agent.stub.StreamLogs(pb.StreamLogsRequest(app=app, **fields), timeout=20))


def _on_engine(docker_client, container_id) -> bool:
    try:
        docker_client.containers.get(container_id)
        return True
    except docker.errors.NotFound:
        return False


def test_a_replaced_release_is_read_from_the_archive_with_tail_and_since(agent, app_name,
                                                                          docker_client, tmp_path):
    sha = _image(agent, app_name, tmp_path)
    first = _release(agent, app_name, sha, 11, "v1")
    second = _release(agent, app_name, sha, 12, "v2")
    assert not _on_engine(docker_client, first.container_id)  # replaced and removed

    old = _logs(agent, app_name, deployment_id=11)
    assert [e.text for e in old] == [f"v1 line {i}" for i in range(1, 6)]
    assert {e.container_id for e in old} == {first.container_id}
    # follow on an archived release ends after its lines (nothing more will come)
    assert [e.text for e in _logs(agent, app_name, deployment_id=11, follow=True)] == \
        [e.text for e in old]
    assert [e.text for e in _logs(agent, app_name, deployment_id=11, tail=2)] == \
        ["v1 line 4", "v1 line 5"]
    since = Timestamp()
    since.CopyFrom(old[2].time)
    assert [e.text for e in _logs(agent, app_name, deployment_id=11, since=since)] == \
        ["v1 line 3", "v1 line 4", "v1 line 5"]
    assert [e.text for e in _logs(agent, app_name, deployment_id=11, since=since, tail=1)] == \
        ["v1 line 5"]

    # the serving release, by id or by default, is read live, with the same since and tail
    live = _logs(agent, app_name, deployment_id=12)
    assert [e.text for e in live] == [f"v2 line {i}" for i in range(1, 6)]
    assert [e.text for e in _logs(agent, app_name)] == [e.text for e in live]
    assert {e.container_id for e in live} == {second.container_id}
    assert [e.text for e in _logs(agent, app_name, since=live[3].time)] == ["v2 line 4", "v2 line 5"]
    assert [e.text for e in _logs(agent, app_name, since=live[1].time, tail=2)] == \
        ["v2 line 4", "v2 line 5"]

    with pytest.raises(grpc.RpcError) as caught:
        _logs(agent, app_name, deployment_id=99)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert "deployment 99" in caught.value.details()


def test_a_crashed_containers_output_survives_its_replacement(agent, app_name, docker_client,
                                                              tmp_path):
    sha = _image(agent, app_name, tmp_path)
    crashed = _release(agent, app_name, sha, 21, "v1")
    container = docker_client.containers.get(crashed.container_id)
    marker = container.exec_run(["/bin/busybox", "sh", "-c", "echo before the crash > /proc/1/fd/1"])
    assert marker.exit_code == 0
    # A crash: the app (PID 1's child; PID 1 is Docker's init) killed, so Docker restarts it.
    killed = container.exec_run(["/bin/busybox", "sh", "-c", "kill -9 $(cat /proc/1/task/1/children)"])
    assert killed.exit_code == 0, killed.output

    def restarted() -> bool:
        container.reload()
        return container.attrs["RestartCount"] >= 1 and container.status == "running"
    assert wait_until(restarted, timeout=30)
    _release(agent, app_name, sha, 22, "v2")
    assert not _on_engine(docker_client, crashed.container_id)

    texts = [e.text for e in _logs(agent, app_name, deployment_id=21)]
    # the first run's lines, the marker, then the restarted run's lines
    assert texts == [f"v1 line {i}" for i in range(1, 6)] + ["before the crash"] + \
        [f"v1 line {i}" for i in range(1, 6)]


def test_the_archive_keeps_the_last_releases_of_an_app(agent_home, app_name, docker_client, tmp_path):
    limits = ArchiveLimits(max_bytes=1024 * 1024, releases=3)
    with start_agent(agent_config(agent_home, log_archive=limits), docker_client) as agent:
        sha = _image(agent, app_name, tmp_path)
        for deployment_id in range(31, 37):
            _release(agent, app_name, sha, deployment_id, f"r{deployment_id}")
        folder = agent.config.log_archive_dir / app_name
        kept = sorted(int(p.name.split("-")[0]) for p in folder.iterdir())
        assert kept == [33, 34, 35]  # 36 serves; 31 and 32 went, oldest first
        assert [e.text for e in _logs(agent, app_name, deployment_id=33, tail=1)] == ["r33 line 5"]
        with pytest.raises(grpc.RpcError) as caught:
            _logs(agent, app_name, deployment_id=31)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
