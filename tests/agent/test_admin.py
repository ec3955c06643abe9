"""ListContainers, StreamLogs, StopApp, RemoveApp, GetInfo and their error codes."""

from __future__ import annotations

import json
import threading

import docker
import grpc
import pytest
from tugboat.v1 import tugboat_pb2 as pb

from common.phases import Phase
from tests.support.agent_calls import build, deploy, wait_until
from tests.support.sample_app import commit_files, make_sample_repo

pytestmark = pytest.mark.docker

TALKATIVE = """FROM scratch
COPY busybox /bin/busybox
COPY index.html /www/index.html
CMD ["/bin/busybox","sh","-c","echo hello $GREETING; echo second line; exec /bin/busybox httpd -f -p 8080 -h /www"]
"""


@pytest.fixture
def deployed(agent, app_name, tmp_path):
    repo = make_sample_repo(tmp_path / "repo")
    sha = commit_files(repo, {"Dockerfile": TALKATIVE}, "talk")
    assert build(agent.stub, app_name, repo, sha, 701)[-1].error == ""
    done = deploy(agent.stub, app_name, sha, 701, env={"GREETING": "world"})[-1]
    assert done.phase is Phase.DONE, done.error
    return done


def _abort_code(call):
    with pytest.raises(grpc.RpcError) as info:
        result = call()
        if hasattr(result, "__iter__") and not hasattr(result, "ListFields"):
            list(result)
    return info.value.code(), info.value.details()


def test_stream_logs_tail_and_follow(agent, app_name, deployed):
    entries = list(agent.stub.StreamLogs(pb.StreamLogsRequest(app=app_name, tail=10), timeout=10))
    assert [e.text for e in entries][:2] == ["hello world", "second line"]
    assert all(e.container_id == deployed.container_id for e in entries)
    assert entries[0].time.seconds > 0

    last_only = list(agent.stub.StreamLogs(pb.StreamLogsRequest(app=app_name, tail=1), timeout=10))
    assert [e.text for e in last_only] == ["second line"]

    # follow keeps the stream open until the client goes away.
    call = agent.stub.StreamLogs(pb.StreamLogsRequest(app=app_name, follow=True), timeout=20)
    seen = []
    thread = threading.Thread(target=lambda: _drain(call, seen), daemon=True)
    thread.start()
    assert wait_until(lambda: len(seen) >= 2, timeout=5)
    assert thread.is_alive()
    call.cancel()
    thread.join(timeout=5)
    assert not thread.is_alive()


def _drain(call, sink):
    try:
        for entry in call:
            sink.append(entry.text)
    except grpc.RpcError:
        pass


def test_info_stop_and_remove(agent, app_name, deployed, docker_client):
    info = agent.stub.GetInfo(pb.GetInfoRequest(), timeout=10)
    assert info.running_containers == 1
    assert info.docker_version == docker_client.version()["Version"]
    assert info.agent_version and info.hostname

    assert agent.stub.StopApp(pb.StopAppRequest(app=app_name), timeout=30).stopped == 1
    assert docker_client.containers.get(deployed.container_id).status == "exited"
    listed = agent.stub.ListContainers(pb.ListContainersRequest(app=app_name), timeout=10).containers
    assert [(c.state, c.serving) for c in listed] == [("exited", True)]
    assert agent.stub.GetInfo(pb.GetInfoRequest(), timeout=10).running_containers == 0

    assert agent.stub.RemoveApp(pb.RemoveAppRequest(app=app_name), timeout=30).removed == 1
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(deployed.container_id)
    assert docker_client.images.list(name=app_name) == []
    routes = json.loads((agent.config.state_dir / "routes.json").read_text())
    assert app_name not in routes["apps"]
    assert not (agent.config.state_dir / "repos" / f"{app_name}.git").exists()

    code, details = _abort_code(lambda: agent.stub.RemoveApp(pb.RemoveAppRequest(app=app_name), timeout=10))
    assert code == grpc.StatusCode.NOT_FOUND and app_name in details


def test_unknown_app_and_deployment_are_not_found(agent, app_name):
    for call in (
        lambda: agent.stub.StreamLogs(pb.StreamLogsRequest(app=app_name), timeout=10),
        lambda: agent.stub.StopApp(pb.StopAppRequest(app=app_name), timeout=10),
        lambda: agent.stub.Cancel(pb.CancelRequest(deployment_id=987654), timeout=10),
    ):
        code, details = _abort_code(call)
        assert code == grpc.StatusCode.NOT_FOUND
        assert details
    code, details = _abort_code(lambda: agent.stub.StopApp(pb.StopAppRequest(app="UPPER"), timeout=10))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "app name 'UPPER' is invalid" in details
    assert agent.stub.ListContainers(pb.ListContainersRequest(app=app_name), timeout=10).containers == []


def test_health_service_reports_serving(agent):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    stub = health_pb2_grpc.HealthStub(agent.channel)
    response = stub.Check(health_pb2.HealthCheckRequest(service="tugboat.v1.TugboatService"), timeout=5)
    assert response.status == health_pb2.HealthCheckResponse.SERVING
