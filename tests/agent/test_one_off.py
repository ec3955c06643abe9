"""One-off commands and release commands on a real engine: output, exit code, env, no container
left behind (also when the caller goes away), detached runs read back after they end, and a
release command that fails the deploy at RELEASE_COMMAND with the old release serving."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from tugboat.v1 import tugboat_pb2 as pb

from common.phases import Phase
from tests.support.agent_calls import build, deploy, http_get, wait_until
from tests.support.sample_app import commit_version, make_sample_repo

pytestmark = pytest.mark.docker

SH = "/bin/busybox"


def _image(agent, app, repo, deployment_id=1) -> str:
    last = build(agent.stub, app, repo, repo.head.commit.hexsha, deployment_id)[-1]
    assert last.error == "", last.error
    return last.result.image


def _run_containers(docker_client, app, run_id=None):
    """Ids only (a list call, no inspect each: a container removed meanwhile is no error)."""
    label = f"io.serversinc.run={run_id}" if run_id else "io.serversinc.run"
    return [c["Id"] for c in docker_client.api.containers(
        all=True, filters={"label": [f"io.serversinc.app={app}", label]})]


def _run(agent, app, image, command, run_id="run-1", **fields):
    request = pb.RunCommandRequest(app=app, run_id=run_id, image=image, command=command, **fields)
    return list(agent.stub.RunCommand(request, timeout=60))


def test_run_streams_output_returns_the_exit_code_and_leaves_no_container(
        agent, app_name, docker_client, tmp_path):
    image = _image(agent, app_name, make_sample_repo(tmp_path / "repo"))
    events = _run(agent, app_name, image,
                  [SH, "sh", "-c", 'echo hi; echo "greeting=$GREETING" >&2; exit 3'],
                  env={"GREETING": "hello-from-env"})
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[0] == "started" and kinds[-1] == "exit", kinds
    lines = [e.line for e in events if e.WhichOneof("event") == "line"]
    # Two pipes: Docker keeps each one's order, not the order between them.
    assert sorted(lines) == ["greeting=hello-from-env", "hi"]
    assert events[-1].exit.exit_code == 3
    assert events[-1].exit.reason == "exited with status 3"
    assert _run_containers(docker_client, app_name) == []
    # Never taken for an app container: nothing of the app is listed.
    listed = agent.stub.ListContainers(pb.ListContainersRequest(app=app_name), timeout=10)
    assert list(listed.containers) == []


def test_a_caller_that_goes_away_kills_and_removes_the_container(agent, app_name, docker_client,
                                                                   tmp_path):
    image = _image(agent, app_name, make_sample_repo(tmp_path / "repo"))
    call = agent.stub.RunCommand(pb.RunCommandRequest(
        app=app_name, run_id="run-2", image=image,
        command=[SH, "sh", "-c", "echo waiting; exec /bin/busybox sleep 600"]), timeout=60)
    events = iter(call)
    assert next(events).WhichOneof("event") == "started"
    assert next(events).line == "waiting"
    assert len(_run_containers(docker_client, app_name, "run-2")) == 1
    call.cancel()
    assert wait_until(lambda: _run_containers(docker_client, app_name, "run-2") == [], timeout=20)


def test_a_run_past_its_timeout_is_killed(agent, app_name, docker_client, tmp_path):
    image = _image(agent, app_name, make_sample_repo(tmp_path / "repo"))
    events = _run(agent, app_name, image, [SH, "sleep", "600"], run_id="run-3",
                  timeout=Duration(seconds=1))
    assert events[-1].exit.timed_out
    assert events[-1].exit.reason == "timed out after 1s and was killed"
    assert _run_containers(docker_client, app_name) == []


def test_a_detached_run_is_read_back_after_it_ends(agent, app_name, docker_client, tmp_path):
    image = _image(agent, app_name, make_sample_repo(tmp_path / "repo"))
    events = _run(agent, app_name, image,
                  [SH, "sh", "-c", "echo one; echo two; exit 4"], run_id="run-4", detach=True)
    assert [e.WhichOneof("event") for e in events] == ["started"]
    get = pb.GetRunRequest(app=app_name, run_id="run-4")
    assert wait_until(lambda: not agent.stub.GetRun(get, timeout=10).running, timeout=30)
    assert wait_until(lambda: _run_containers(docker_client, app_name) == [], timeout=30)
    info = agent.stub.GetRun(get, timeout=10)
    assert list(info.lines) == ["one", "two"]
    assert info.exit.exit_code == 4 and info.HasField("end_time")
    with pytest.raises(grpc.RpcError) as err:
        agent.stub.GetRun(pb.GetRunRequest(app=app_name, run_id="run-404"), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_bad_run_requests_are_refused(agent, app_name):
    for request in (pb.RunCommandRequest(app=app_name, run_id="run-1", image="x", command=[]),
                    pb.RunCommandRequest(app=app_name, run_id="Bad Id", image="x", command=["a"]),
                    pb.RunCommandRequest(app=app_name, run_id="run-1", image="", command=["a"])):
        with pytest.raises(grpc.RpcError) as err:
            list(agent.stub.RunCommand(request, timeout=10))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # An image the engine does not have: the run ends with the reason, nothing is left.
    events = _run(agent, app_name, f"{app_name}:missing", ["/x"])
    assert events[-1].exit.exit_code == -1 and "not found" in events[-1].exit.reason


def test_a_failing_release_command_fails_the_deploy_and_the_old_release_serves(
        agent, app_name, docker_client, tmp_path):
    repo = make_sample_repo(tmp_path / "repo", "v1")
    v1 = repo.head.commit.hexsha
    _image(agent, app_name, repo, 1)
    done = deploy(agent.stub, app_name, v1, 1)[-1]
    assert done.phase is Phase.DONE, done.error
    v2 = commit_version(repo, "v2")
    _image(agent, app_name, repo, 2)
    events = deploy(agent.stub, app_name, v2, 2,
                    release_command=[SH, "sh", "-c", "echo migrating; exit 3"])
    last = events[-1]
    assert last.phase is Phase.RELEASE_COMMAND
    assert last.failure == pb.FAILURE_KIND_RELEASE_COMMAND
    assert last.error == "release command exited with status 3"
    assert "migrating" in [e.message for e in events if e.phase is Phase.RELEASE_COMMAND]
    assert Phase.START not in [e.phase for e in events]
    assert http_get(done.url) == (200, "<html><body>sample app v1</body></html>\n")
    assert _run_containers(docker_client, app_name) == []
    assert [c.deployment_id for c in agent.stub.ListContainers(
        pb.ListContainersRequest(app=app_name), timeout=10).containers] == [1]


def test_a_succeeding_release_command_runs_once_before_the_new_container_starts(
        agent, app_name, docker_client, tmp_path):
    repo = make_sample_repo(tmp_path / "repo", "v1")
    sha = repo.head.commit.hexsha
    _image(agent, app_name, repo, 1)
    events = deploy(agent.stub, app_name, sha, 1, env={"DB": "postgres://db"},
                    release_command=[SH, "sh", "-c", 'echo "migrating $DB"'])
    assert events[-1].phase is Phase.DONE, events[-1].error
    phases = [e.phase for e in events]
    assert phases.index(Phase.RELEASE_COMMAND) < phases.index(Phase.START)
    assert [e.message for e in events].count("migrating postgres://db") == 1
    assert http_get(events[-1].url)[1] == "<html><body>sample app v1</body></html>\n"
    assert _run_containers(docker_client, app_name) == []


def test_removing_the_app_ends_its_detached_runs(agent, app_name, docker_client, tmp_path):
    image = _image(agent, app_name, make_sample_repo(tmp_path / "repo"))
    _run(agent, app_name, image, [SH, "sh", "-c", "echo working; exec /bin/busybox sleep 600"],
         run_id="run-5", detach=True)
    get = pb.GetRunRequest(app=app_name, run_id="run-5")
    assert wait_until(lambda: list(agent.stub.GetRun(get, timeout=10).lines) == ["working"], timeout=30)
    agent.stub.RemoveApp(pb.RemoveAppRequest(app=app_name), timeout=60)
    assert _run_containers(docker_client, app_name) == []
    assert wait_until(lambda: not agent.stub.GetRun(get, timeout=10).running, timeout=30)
    info = agent.stub.GetRun(get, timeout=10)
    assert info.exit.reason == "killed: its app was removed"
    assert list(info.lines) == ["working"]


def test_a_restarted_agent_follows_its_detached_runs_again(agent, app_name, docker_client, tmp_path):
    """What a new agent process finds at its start: a detached run's container made by the last
    one (no watcher in this process), and an attached run's whose caller is gone."""
    from agent.docker_engine import ContainerSpec, DockerEngine
    from agent.one_off import OneOffs

    image = _image(agent, app_name, make_sample_repo(tmp_path / "repo"))
    engine = DockerEngine(docker_client, agent_id="restarted-agent")
    base = {"io.serversinc.app": app_name, "io.serversinc.agent": "restarted-agent",
            "io.serversinc.kind": "run"}
    detached = engine.create_unpublished(ContainerSpec(
        name=f"{app_name}-run-6", image=image, port=0, env={}, restart_policy="no",
        labels={**base, "io.serversinc.run": "run-6", "io.serversinc.detached": "true",
                "io.serversinc.timeout": "60"},
        command=(SH, "sh", "-c", "echo from-before; exit 6")))
    attached = engine.create_unpublished(ContainerSpec(
        name=f"{app_name}-run-7", image=image, port=0, env={}, restart_policy="no",
        labels={**base, "io.serversinc.run": "run-7"}, command=(SH, "sleep", "600")))
    engine.start(detached)
    engine.start(attached)
    one_offs = OneOffs(engine, tmp_path / "runs", "restarted-agent")
    assert one_offs.resume() == 1
    assert wait_until(lambda: _run_containers(docker_client, app_name) == [], timeout=30)
    status = one_offs.status(app_name, "run-6")
    assert not status.running and status.exit.exit_code == 6 and status.lines == ("from-before",)
