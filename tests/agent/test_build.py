"""Build over gRPC against a real Docker engine and real git repositories."""

from __future__ import annotations

import threading
import time
import uuid

import docker
import grpc
import pytest
from tugboat.v1 import tugboat_pb2 as pb

from tests.conftest import agent_config, start_agent
from tests.support.agent_calls import build, build_seen, wait_until
from tests.support.sample_app import commit_files, make_sample_repo, repo_url, slow_step

pytestmark = pytest.mark.docker

def slow_dockerfile(seconds: int = 30) -> str:
    return ('FROM scratch\nCOPY busybox /bin/busybox\n' + slow_step(seconds)
            + 'CMD ["/bin/busybox","true"]\n')


def test_build_streams_steps_and_tags_image(agent, app_name, docker_client, tmp_path):
    repo = make_sample_repo(tmp_path / "repo", "v1")
    sha = repo.head.commit.hexsha

    events = build(agent.stub, app_name, repo, sha, 11)

    last = events[-1]
    assert last.error == "", last.error
    assert last.result.image == f"{app_name}:{sha}"
    assert not last.result.skipped
    assert last.result.commit_message == "sample app v1"
    assert last.result.seconds > 0
    steps = [(e.step_current, e.step_total, e.line) for e in events if e.step_current]
    # 5 Dockerfile steps, plus one LABEL step per image label the agent adds.
    total = steps[0][1]
    assert total >= 5
    assert [s[:2] for s in steps] == [(i, total) for i in range(1, total + 1)]
    assert steps[0][2] == f"Step 1/{total} : FROM scratch"
    assert all("\n" not in e.line for e in events)
    image = docker_client.images.get(f"{app_name}:{sha}")
    assert image.id == last.result.image_id
    assert image.labels["io.serversinc.app"] == app_name
    # The cache is a bare repository per app.
    assert (agent.config.state_dir / "repos" / f"{app_name}.git" / "HEAD").exists()

    again = build(agent.stub, app_name, repo, sha, 12)
    assert again[-1].result.skipped
    assert again[-1].result.image_id == image.id

    forced = build(agent.stub, app_name, repo, sha, 13, force=True)
    assert forced[-1].error == ""
    assert not forced[-1].result.skipped
    assert any(e.step_current == total for e in forced)


def test_second_commit_fetches_incrementally_into_same_cache(agent, app_name, tmp_path):
    repo = make_sample_repo(tmp_path / "repo", "v1")
    first = repo.head.commit.hexsha
    assert build(agent.stub, app_name, repo, first, 1)[-1].error == ""
    second = commit_files(repo, {"index.html": "v2\n", "sub/Dockerfile.alt":
                                 "FROM scratch\nCOPY x /x\n", "sub/x": "x\n"}, "second")
    events = build(agent.stub, app_name, repo, second, 2, dockerfile="Dockerfile.alt",
                   context_dir="sub")
    assert events[-1].error == "", events[-1].error
    assert events[-1].result.commit_message == "second"
    assert [e.step_current for e in events if e.step_current][:2] == [1, 2]


def test_failing_dockerfile_reports_docker_error(agent, app_name, docker_client, tmp_path):
    repo = make_sample_repo(tmp_path / "repo")
    sha = commit_files(repo, {"Dockerfile": 'FROM scratch\nCOPY busybox /bin/busybox\n'
                                            'RUN ["/bin/busybox","false"]\n'}, "break it")
    events = build(agent.stub, app_name, repo, sha, 21)
    last = events[-1]
    assert "returned a non-zero code: 1" in last.error
    assert not last.cancelled
    assert last.result is None
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(f"{app_name}:{sha}")


def test_unknown_commit_is_a_git_error(agent, app_name, tmp_path):
    repo = make_sample_repo(tmp_path / "repo")
    missing = "0123456789abcdef0123456789abcdef01234567"
    last = build(agent.stub, app_name, repo, missing, 31)[-1]
    assert last.error == f"commit {missing} not found in {repo_url(repo)}"


@pytest.mark.parametrize("field,value,needle", [
    ("app", "Bad_Name", "app name 'Bad_Name' is invalid"),
    ("commit_sha", "abc123", "40-hex-digit"),
    ("dockerfile", "../Dockerfile", "inside the repository"),
    ("context_dir", "/etc", "not absolute"),
    ("context_dir", "a/../../b", "inside the repository"),
])
def test_bad_build_input_is_invalid_argument(agent, app_name, field, value, needle):
    request = dict(app=app_name, deployment_id=41, repo_url="/nonexistent",
                   commit_sha="a" * 40, dockerfile="Dockerfile")
    request[field] = value
    with pytest.raises(grpc.RpcError) as info:
        list(agent.stub.Build(pb.BuildRequest(**request), timeout=10))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert needle in info.value.details()


def _start_build(stub, app, repo, sha, deployment_id, sink):
    """Run a build in a thread, appending events to `sink`; returns (thread, call)."""
    call = stub.Build(pb.BuildRequest(app=app, deployment_id=deployment_id,
                                      repo_url=repo_url(repo), commit_sha=sha,
                                      dockerfile="Dockerfile"), timeout=120)

    def consume():
        try:
            for event in call:
                sink.append((time.monotonic(), build_seen(event)))
        except grpc.RpcError as exc:
            sink.append((time.monotonic(), exc))
    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    return thread, call


def _running_container(sink) -> str | None:
    for _, event in sink:
        line = getattr(event, "line", "")
        if line.startswith(" ---> Running in "):
            return line.split()[-1]
    return None


def _gone(docker_client, container_id):
    try:
        docker_client.containers.get(container_id)
        return False
    except docker.errors.NotFound:
        return True


def test_cancel_stops_only_that_build(agent_home, app_name, make_app_name, docker_client, tmp_path):
    # Two builds at once on this agent (the default is one: test_builds_wait_their_turn).
    with start_agent(agent_config(agent_home, build_concurrency=2), docker_client) as agent:
        _cancel_stops_only_that_build(agent, app_name, make_app_name, docker_client, tmp_path)


def _cancel_stops_only_that_build(agent, app_name, make_app_name, docker_client, tmp_path):
    slow_repo = make_sample_repo(tmp_path / "slow")
    slow_sha = commit_files(slow_repo, {"Dockerfile": slow_dockerfile()}, "slow")
    other_app = make_app_name()
    other_repo = make_sample_repo(tmp_path / "other", "other")
    other_sha = commit_files(other_repo, {"Dockerfile": slow_dockerfile(3)},
                             "a bit slow")

    slow_events, other_events = [], []
    slow_thread, _ = _start_build(agent.stub, app_name, slow_repo, slow_sha, 51, slow_events)
    assert wait_until(lambda: _running_container(slow_events), timeout=30)
    other_thread, _ = _start_build(agent.stub, other_app, other_repo, other_sha, 52, other_events)
    assert wait_until(lambda: _running_container(other_events), timeout=30)
    step_container = _running_container(slow_events)

    agent.stub.Cancel(pb.CancelRequest(deployment_id=51), timeout=5)
    slow_thread.join(timeout=10)
    assert not slow_thread.is_alive()
    _, last = slow_events[-1]
    assert last.error == "cancelled" and last.cancelled
    assert wait_until(lambda: _gone(docker_client, step_container), timeout=5)

    other_thread.join(timeout=60)
    other_last = other_events[-1][1]
    assert other_last.error == "", other_last.error
    assert docker_client.images.get(f"{other_app}:{other_sha}").id == other_last.result.image_id
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(f"{app_name}:{slow_sha}")

    # Nothing runs for that deployment any more.
    with pytest.raises(grpc.RpcError) as info:
        agent.stub.Cancel(pb.CancelRequest(deployment_id=51), timeout=5)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_client_cancelling_the_stream_stops_the_build(agent, app_name, docker_client, tmp_path):
    repo = make_sample_repo(tmp_path / "slow")
    sha = commit_files(repo, {"Dockerfile": slow_dockerfile()}, "slow")
    events = []
    thread, call = _start_build(agent.stub, app_name, repo, sha, 61, events)
    assert wait_until(lambda: _running_container(events), timeout=30)
    step_container = _running_container(events)
    call.cancel()
    thread.join(timeout=5)
    assert wait_until(lambda: _gone(docker_client, step_container), timeout=5)
    # The operation is gone too: the deployment id can be used again at once.
    assert wait_until(lambda: _cancel_not_found(agent.stub, 61), timeout=3)


def _cancel_not_found(stub, deployment_id) -> bool:
    try:
        stub.Cancel(pb.CancelRequest(deployment_id=deployment_id), timeout=5)
        return False
    except grpc.RpcError as exc:
        return exc.code() == grpc.StatusCode.NOT_FOUND


def test_changed_dockerfile_path_or_context_rebuilds_a_built_commit(agent, app_name, docker_client, tmp_path):
    repo = make_sample_repo(tmp_path / "repo", "v1")
    sha = commit_files(repo, {"Dockerfile.alt": "FROM scratch\nCOPY index.html /alt.html\n",
                              "sub/Dockerfile": "FROM scratch\nCOPY x /x\n", "sub/x": "x\n"}, "three ways")
    first = build(agent.stub, app_name, repo, sha, 81)[-1]
    assert first.error == "" and not first.result.skipped
    assert build(agent.stub, app_name, repo, sha, 82)[-1].result.skipped

    alt = build(agent.stub, app_name, repo, sha, 83, dockerfile="Dockerfile.alt")
    assert alt[-1].error == "", alt[-1].error
    assert not alt[-1].result.skipped and alt[-1].result.image_id != first.result.image_id
    assert any("other build settings" in e.line for e in alt)
    assert docker_client.images.get(f"{app_name}:{sha}").id == alt[-1].result.image_id

    sub = build(agent.stub, app_name, repo, sha, 84, context_dir="sub")[-1]
    assert sub.error == "" and not sub.result.skipped
    assert sub.result.image_id not in (first.result.image_id, alt[-1].result.image_id)
    assert build(agent.stub, app_name, repo, sha, 85, context_dir="sub")[-1].result.skipped


def test_a_line_without_end_is_capped_with_a_marker(agent, app_name, tmp_path):
    # 64 MiB on one line, no newline: the agent holds and streams at most LINE_LIMIT of it.
    from agent.builder import LINE_LIMIT, TRUNCATED

    repo = make_sample_repo(tmp_path / "repo")
    sha = commit_files(repo, {"Dockerfile": (
        'FROM scratch\nCOPY busybox /bin/busybox\n'
        'RUN ["/bin/busybox","sh","-c","/bin/busybox head -c 67108864 /dev/zero | /bin/busybox tr \'\\\\0\' x"]\n'
    )}, "loud")
    events = build(agent.stub, app_name, repo, sha, 91, timeout=300)
    assert events[-1].error == "", events[-1].error
    assert max(len(e.line) for e in events) <= LINE_LIMIT + len(TRUNCATED)
    capped = [e.line for e in events if e.line.endswith(TRUNCATED)]
    assert len(capped) == 1 and capped[0].startswith("x" * 100)
    # The build goes on after the long line: the later steps still stream.
    assert any(e.line.startswith(" ---> ") for e in events[events.index(next(
        e for e in events if e.line.endswith(TRUNCATED))):])


def _nonce() -> str:
    """A LABEL line no other build has, so the engine's build cache never skips the RUN after it."""
    return f"LABEL io.serversinc.test-nonce={uuid.uuid4().hex}\n"


def _next_until(stream, predicate) -> tuple[list, object]:
    """The events of a Build stream up to the first one `predicate` accepts: (before, it)."""
    before = []
    for event in stream:
        seen = build_seen(event)
        if predicate(seen):
            return before, seen
        before.append(seen)
    raise AssertionError(f"the stream ended first: {before[-3:]}")


def test_builds_wait_their_turn(agent, app_name, make_app_name, docker_client, tmp_path):
    """One build at a time on a server (the default): a second build says it waits, and the
    engine starts it only after the first ended. The first build's RUN step holds until the test
    lets it go (a file it waits for), so the wait is certain, not a race."""
    from agent.build_slots import BuildSlots

    first_repo = make_sample_repo(tmp_path / "first")
    first_sha = commit_files(first_repo, {"Dockerfile": (
        'FROM scratch\nCOPY busybox /bin/busybox\n' + _nonce() +
        'RUN ["/bin/busybox","sh","-c","until [ -e /go ]; do /bin/busybox sleep 0.1; done"]\n')},
        "waits for /go")
    second_app = make_app_name()
    second_repo = make_sample_repo(tmp_path / "second", "second")
    second_sha = commit_files(second_repo, {"Dockerfile": (
        'FROM scratch\nCOPY busybox /bin/busybox\n' + _nonce() +
        'RUN ["/bin/busybox","true"]\n')}, "quick")
    # The engine's own order of container events says which step container ran when.
    engine_events = docker_client.events(decode=True, filters={"type": "container"})
    seen_by_engine = []

    def watch():
        try:
            for e in engine_events:
                seen_by_engine.append((e.get("Action"), e.get("id", "")))
        except Exception:  # the stream closed under it at the end
            pass
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        first = agent.stub.Build(pb.BuildRequest(app=app_name, deployment_id=71, repo_url=repo_url(first_repo),
                                                 commit_sha=first_sha, dockerfile="Dockerfile"), timeout=120)
        _next_until(first, lambda e: e.step_current and " : RUN " in e.line)
        _, running = _next_until(first, lambda e: e.line.startswith(" ---> Running in "))
        first_step = running.line.split()[-1]  # the RUN step's container

        second = agent.stub.Build(pb.BuildRequest(app=second_app, deployment_id=72, repo_url=repo_url(second_repo),
                                                  commit_sha=second_sha, dockerfile="Dockerfile"), timeout=120)
        before_wait, waiting = _next_until(second, lambda e: "waiting for another build" in e.line)
        assert waiting.line == BuildSlots(1).waiting_line
        assert not any(e.step_current for e in before_wait), before_wait
        # ... and says so in a form its caller's deadline reads (it stops while the build waits).
        assert build_seen(next(second)).waiting_for_slot is True

        docker_client.containers.get(first_step).exec_run(["/bin/busybox", "touch", "/go"])
        first_rest = [build_seen(e) for e in first]
        assert first_rest[-1].error == "" and not first_rest[-1].result.skipped, first_rest[-1]
        second_rest = [build_seen(e) for e in second]
        assert second_rest[-1].error == "" and not second_rest[-1].result.skipped, second_rest[-1]
    finally:
        engine_events.close()
        watcher.join(timeout=10)
    # The wait's end came before the second build's first step: got a slot, then built.
    got = next(i for i, e in enumerate(second_rest) if e.waiting_for_slot is not None)
    assert second_rest[got].waiting_for_slot is False
    assert second_rest[got - 1].line.startswith("got a build slot after waiting ")
    assert not any(e.step_current for e in second_rest[:got]), second_rest[:got]
    # Every docker step of the second build streamed after its wait line ...
    assert [e.step_current for e in second_rest if e.step_current][:1] == [1]
    run_step = next(i for i, e in enumerate(second_rest) if e.step_current and " : RUN " in e.line)
    second_step = next(e.line.split()[-1] for e in second_rest[run_step:] if e.line.startswith(" ---> Running in "))
    # ... and the engine created its step container only after the first build's had exited.
    order = [(action, cid[:12]) for action, cid in seen_by_engine]
    assert order.index(("create", second_step)) > order.index(("die", first_step)), order


def test_the_wait_for_a_slot_does_not_count_against_a_callers_build_deadline(agent, app_name, make_app_name,
                                                                             docker_client, tmp_path):
    """The control plane's client (services.agents.client) against the real agent: while a first
    build holds the server's one slot, a second build with a 4 s deadline waits longer than that
    and still builds once the slot is free; a third, whose wait is bounded to 1 s, fails as a slot
    wait (not as its build) and leaves the queue."""
    from common.cancel import CancelToken
    from common.specs import BuildSpec
    from services.agents.client import AgentClient
    from services.agents.port import AgentSlotWaitTimeout

    DEADLINE = 4.0  # the second build's: room for its fetch and its (cached) steps on a busy machine
    first_repo = make_sample_repo(tmp_path / "first")
    first_sha = commit_files(first_repo, {"Dockerfile": (
        'FROM scratch\nCOPY busybox /bin/busybox\n' + _nonce() +
        'RUN ["/bin/busybox","sh","-c","until [ -e /go ]; do /bin/busybox sleep 0.1; done"]\n')},
        "waits for /go")
    quick = {"Dockerfile": 'FROM scratch\nCOPY busybox /bin/busybox\n'}  # cached steps: its build is quick
    second_app, third_app = make_app_name(), make_app_name()
    second_repo, third_repo = make_sample_repo(tmp_path / "second"), make_sample_repo(tmp_path / "third")
    second_sha = commit_files(second_repo, quick, "quick")
    third_sha = commit_files(third_repo, quick, "quick")
    client = AgentClient(agent.address, channel=agent.channel)
    outcomes: dict[str, object] = {}
    waiting = {"second": threading.Event(), "third": threading.Event()}

    def run(name, spec, timeout, slot_wait):
        updates = []
        try:
            for update in client.build(spec, timeout=timeout, cancel=CancelToken(), slot_wait=slot_wait):
                updates.append(update)
                if "waiting for another build" in update.line:
                    waiting[name].set()
            outcomes[name] = updates
        except Exception as err:  # noqa: BLE001 - the test reads what each build got
            outcomes[name] = err

    first = agent.stub.Build(pb.BuildRequest(app=app_name, deployment_id=81, repo_url=repo_url(first_repo),
                                             commit_sha=first_sha, dockerfile="Dockerfile"), timeout=120)
    _next_until(first, lambda e: e.step_current and " : RUN " in e.line)
    _, running = _next_until(first, lambda e: e.line.startswith(" ---> Running in "))  # the RUN's container
    second_spec = BuildSpec(second_app, 82, repo_url(second_repo), second_sha)
    third_spec = BuildSpec(third_app, 83, repo_url(third_repo), third_sha)
    threads = {  # (name, spec, build deadline, bound of the slot wait)
        "second": threading.Thread(target=run, args=("second", second_spec, DEADLINE, 600.0)),
        "third": threading.Thread(target=run, args=("third", third_spec, 600.0, 1.0)),
    }
    for t in threads.values():
        t.start()
    try:
        assert waiting["second"].wait(60)
        second_waits = time.monotonic()  # it waited from before this
        assert waiting["third"].wait(60)
        threads["third"].join(60)
        assert isinstance(outcomes["third"], AgentSlotWaitTimeout), outcomes["third"]
        assert "build slot" in str(outcomes["third"])
        # The point of the test is time: the second build waits past its own deadline.
        time.sleep(max(0.0, DEADLINE + 1 - (time.monotonic() - second_waits)))
        assert threads["second"].is_alive()
    finally:
        docker_client.containers.get(running.line.split()[-1]).exec_run(["/bin/busybox", "touch", "/go"])
        for t in threads.values():
            t.join(120)  # (the client's channel is the fixture's: closed with the agent)
    assert [build_seen(e) for e in first][-1].error == ""
    second = outcomes["second"]
    assert not isinstance(second, Exception), second
    assert second[-1].done and not second[-1].error and second[-1].image == f"{second_app}:{second_sha}", second[-1]
    waited = next(u.line for u in second if u.line.startswith("got a build slot after waiting "))
    assert float(waited.split()[-1].rstrip("s")) > DEADLINE, waited  # it waited longer than its deadline
    # The third left the queue: its deployment id is free for a build of its own again.
    again = [build_seen(e) for e in agent.stub.Build(pb.BuildRequest(
        app=third_app, deployment_id=83, repo_url=repo_url(third_repo), commit_sha=third_sha,
        dockerfile="Dockerfile"), timeout=60)]
    assert again[-1].error == "" and again[-1].result.image == f"{third_app}:{third_sha}", again[-1]
