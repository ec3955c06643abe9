"""Deploy over gRPC: real containers, health probes over 127.0.0.1, traffic switch, restart."""

from __future__ import annotations

import json
import threading

import docker
import grpc
import pytest
from tugboat.v1 import tugboat_pb2 as pb

from common.phases import Phase
from tests.conftest import start_agent
from tests.support.agent_calls import (build, deploy, deploy_request, deploy_seen, http_get,
                                       wait_until)
from tests.support.sample_app import commit_files, commit_version, make_sample_repo

pytestmark = pytest.mark.docker

CRASHING = """FROM scratch
COPY busybox /bin/busybox
CMD ["/bin/busybox","sh","-c","echo boom on start; exit 3"]
"""
SILENT = """FROM scratch
COPY busybox /bin/busybox
CMD ["/bin/busybox","sleep","60"]
"""


def _built(agent, app, repo, sha, deployment_id):
    last = build(agent.stub, app, repo, sha, deployment_id)[-1]
    assert last.error == "", last.error
    return last.result.image


def _deployed(agent, app, repo, sha, deployment_id, **fields):
    _built(agent, app, repo, sha, deployment_id)
    events = deploy(agent.stub, app, sha, deployment_id, **fields)
    last = events[-1]
    assert last.phase is Phase.DONE, (last.failure, last.error)
    return events


def _exists(docker_client, container_id) -> bool:
    try:
        docker_client.containers.get(container_id)
        return True
    except docker.errors.NotFound:
        return False


def test_deploy_v1_then_v2_switches_and_removes_old(agent, app_name, docker_client, tmp_path):
    repo = make_sample_repo(tmp_path / "repo", "v1")
    v1 = repo.head.commit.hexsha
    events = _deployed(agent, app_name, repo, v1, 101, env={"GREETING": "secret-value"})
    phases = [e.phase for e in events]
    for phase in (Phase.START, Phase.HEALTH, Phase.SWITCH, Phase.STOP_OLD, Phase.DONE):
        assert phase in phases
    assert phases == sorted(phases, key=list(Phase).index)  # in order, each once started
    done = events[-1]
    assert done.url == f"http://{app_name}.localhost:{agent.config.front_door_port}"
    assert http_get(done.url) == (200, "<html><body>sample app v1</body></html>\n")
    old = docker_client.containers.get(done.container_id)
    assert old.name.startswith(f"{app_name}-101-")
    assert old.labels["io.serversinc.app"] == app_name
    assert old.labels["io.serversinc.deployment"] == "101"
    assert old.labels["io.serversinc.commit"] == v1
    assert "secret-value" not in json.dumps(old.labels)
    assert "GREETING=secret-value" in old.attrs["Config"]["Env"]
    assert old.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert old.attrs["HostConfig"]["Init"] is True

    v2 = commit_version(repo, "v2")
    done2 = _deployed(agent, app_name, repo, v2, 102)[-1]
    assert http_get(done2.url)[1] == "<html><body>sample app v2</body></html>\n"
    assert done2.container_id != done.container_id
    assert not _exists(docker_client, done.container_id)

    listed = agent.stub.ListContainers(pb.ListContainersRequest(app=app_name), timeout=10).containers
    assert [(c.id, c.serving, c.commit_sha, c.deployment_id) for c in listed] == \
        [(done2.container_id, True, v2, 102)]
    assert listed[0].direct_url.startswith("http://127.0.0.1:") and listed[0].state == "running"
    assert http_get(listed[0].direct_url)[1] == "<html><body>sample app v2</body></html>\n"
    routes = json.loads((agent.config.state_dir / "routes.json").read_text())
    route = routes["apps"][app_name]
    assert route["url"] == done2.url and route["draining"] == []
    [server] = route["servers"]
    assert server["container_id"] == done2.container_id
    assert server["host_port"] == int(listed[0].direct_url.rsplit(":", 1)[1])


def test_crashing_container_fails_start_and_old_keeps_serving(agent, app_name, docker_client,
                                                              tmp_path):
    repo = make_sample_repo(tmp_path / "repo", "v1")
    v1 = repo.head.commit.hexsha
    good = _deployed(agent, app_name, repo, v1, 201)[-1]

    bad = commit_files(repo, {"Dockerfile": CRASHING}, "crash on start")
    _built(agent, app_name, repo, bad, 202)
    last = deploy(agent.stub, app_name, bad, 202)[-1]
    assert last.failure == pb.FAILURE_KIND_START
    assert "exited with code 3" in last.error
    assert "boom on start" in last.error
    assert last.container_id and not _exists(docker_client, last.container_id)
    assert http_get(good.url)[1] == "<html><body>sample app v1</body></html>\n"
    listed = agent.stub.ListContainers(pb.ListContainersRequest(app=app_name), timeout=10).containers
    assert [(c.id, c.serving) for c in listed] == [(good.container_id, True)]


def test_silent_container_fails_health_within_timeout(agent, app_name, docker_client, tmp_path):
    repo = make_sample_repo(tmp_path / "repo")
    sha = commit_files(repo, {"Dockerfile": SILENT}, "never listens")
    _built(agent, app_name, repo, sha, 301)
    events = deploy(agent.stub, app_name, sha, 301, health_timeout_seconds=2, health_path="/healthz")
    last = events[-1]
    assert last.failure == pb.FAILURE_KIND_HEALTH
    assert last.phase is Phase.HEALTH
    assert "not healthy within 2s" in last.error and "GET /healthz failed" in last.error
    # It probed until the deadline: HEALTH was reported before the failure, which names the deadline.
    assert [e.phase for e in events[:-1]].count(Phase.HEALTH) >= 1
    assert not _exists(docker_client, last.container_id)
    assert docker_client.containers.list(all=True, filters={"label": f"io.serversinc.app={app_name}"}) == []


def test_cancel_during_health_removes_new_container(agent, app_name, docker_client, tmp_path):
    repo = make_sample_repo(tmp_path / "repo")
    sha = commit_files(repo, {"Dockerfile": SILENT}, "never listens")
    _built(agent, app_name, repo, sha, 401)
    events = []
    call = agent.stub.Deploy(deploy_request(app_name, sha, 401, health_timeout_seconds=60),
                             timeout=60)
    thread = threading.Thread(target=lambda: events.extend(map(deploy_seen, call)), daemon=True)
    thread.start()
    assert wait_until(lambda: any(e.phase is Phase.HEALTH for e in events), timeout=10)
    container_id = events[-1].container_id
    assert _exists(docker_client, container_id)
    agent.stub.Cancel(pb.CancelRequest(deployment_id=401), timeout=5)
    thread.join(timeout=30)  # far below the 60 s health timeout: only the cancel can end it
    assert not thread.is_alive()
    assert events[-1].failure == pb.FAILURE_KIND_CANCELLED
    assert not _exists(docker_client, container_id)


@pytest.mark.parametrize("field,value,code", [
    ("app", "-bad-", grpc.StatusCode.INVALID_ARGUMENT),
    ("commit_sha", "xyz", grpc.StatusCode.INVALID_ARGUMENT),
    ("port", 0, grpc.StatusCode.INVALID_ARGUMENT),
    ("deployment_id", 0, grpc.StatusCode.INVALID_ARGUMENT),
])
def test_bad_deploy_input_is_invalid_argument(agent, app_name, field, value, code):
    request = dict(app=app_name, deployment_id=5, image="x", commit_sha="b" * 40, port=8080)
    request[field] = value
    with pytest.raises(grpc.RpcError) as info:
        list(agent.stub.Deploy(pb.DeployRequest(**request), timeout=10))
    assert info.value.code() == code
    assert field.replace("_", "") in info.value.details().lower().replace("_", "").replace(" ", "")


def test_missing_image_fails_start(agent, app_name):
    last = deploy(agent.stub, app_name, "c" * 40, 501)[-1]
    assert last.failure == pb.FAILURE_KIND_START
    assert "not found" in last.error


def test_restart_keeps_serving_container_and_drops_leftovers(agent_home, app_name, docker_client,
                                                             tmp_path):
    from tests.conftest import agent_config

    config = agent_config(agent_home)
    repo = make_sample_repo(tmp_path / "repo", "v1")
    v1 = repo.head.commit.hexsha
    with start_agent(config, docker_client) as first:
        done = _deployed(first, app_name, repo, v1, 601)[-1]
    # Simulate a deploy interrupted by the restart: a container that never got traffic.
    agent_id = (agent_home / "agent_id").read_text().strip()
    leftover = docker_client.containers.run(
        f"{app_name}:{v1}", name=f"{app_name}-602", detach=True, init=True,
        labels={"io.serversinc.managed": "true", "io.serversinc.app": app_name,
                "io.serversinc.deployment": "602", "io.serversinc.commit": v1,
                "io.serversinc.agent": agent_id},
        ports={"8080/tcp": ("127.0.0.1", None)})

    with start_agent(config, docker_client) as second:
        listed = second.stub.ListContainers(pb.ListContainersRequest(app=app_name),
                                            timeout=10).containers
        assert [(c.id, c.serving) for c in listed] == [(done.container_id, True)]
        assert not _exists(docker_client, leftover.id)
        assert http_get(listed[0].direct_url)[1] == "<html><body>sample app v1</body></html>\n"
        info = second.stub.GetInfo(pb.GetInfoRequest(), timeout=10)
        assert info.running_containers == 1


def test_a_container_of_the_same_name_from_another_agent_does_not_block_a_deploy(agent, app_name, tmp_path, docker_client):
    """A reset database starts deployment ids again; a stranger's container must not collide."""
    repo = make_sample_repo(tmp_path / "repo", "v1")
    v1 = repo.head.commit.hexsha
    list(agent.stub.Build(pb.BuildRequest(app=app_name, deployment_id=1, repo_url=str(repo.working_tree_dir),
                                          commit_sha=v1, dockerfile="Dockerfile"), timeout=60))
    stranger = docker_client.containers.run(
        f"{app_name}:{v1}", name=f"{app_name}-7", detach=True, init=True,
        labels={"io.serversinc.managed": "true", "io.serversinc.app": app_name, "io.serversinc.deployment": "7",
                "io.serversinc.agent": "another-agent"})
    done = _deployed(agent, app_name, repo, v1, 7)[-1]
    assert not done.failure and http_get(done.url)[0] == 200
    assert docker_client.containers.get(stranger.id).status == "running"  # not ours: left alone
