"""Named volumes on a real engine: kept across deploys and rollbacks, exclusive deploys (one
container at a time, the unserved time reported, the old release back after a failure), removed
only with the app and its flag, and a volume the platform does not own left alone."""

from __future__ import annotations

import time

import docker
import pytest
from tugboat.v1 import tugboat_pb2 as pb

from common.phases import Phase
from tests.support.agent_calls import (build, deploy_request, deploy_seen, front_get,
                                       wait_until)
from tests.support.sample_app import commit_files, make_sample_repo

pytestmark = pytest.mark.docker

# The page the app serves is the volume itself: /log lists every release that started on it.
WRITER = """FROM scratch
COPY busybox /bin/busybox
CMD ["/bin/busybox","sh","-c","echo {version} >> /data/log; exec /bin/busybox httpd -f -p 8080 -h /data"]
"""
# Starts, writes nothing, never answers HTTP: fails its health gate.
MUTE = """FROM scratch
COPY busybox /bin/busybox
CMD ["/bin/busybox","sleep","600"]
"""
VOLUMES = [pb.Volume(name="data", path="/data")]


@pytest.fixture
def volumes_swept(docker_client, app_name):
    """Every volume named for the test's app is removed afterwards (ours or planted)."""
    yield
    for volume in docker_client.volumes.list(filters={"name": f"serversinc-{app_name}-"}):
        try:
            volume.remove(force=True)
        except docker.errors.APIError:
            pass


def _release(agent, app, repo, dockerfile: str, deployment_id: int) -> str:
    sha = commit_files(repo, {"Dockerfile": dockerfile}, f"release {deployment_id}")
    last = build(agent.stub, app, repo, sha, deployment_id)[-1]
    assert last.error == "", last.error
    return sha


def _deploy(agent, app, sha, deployment_id, **fields):
    """All events, as seen, and the raw last event (its result carries unserved_seconds)."""
    request = deploy_request(app, sha, deployment_id, volumes=VOLUMES, health_path="/log",
                             health_timeout_seconds=fields.pop("health_timeout_seconds", 20),
                             **fields)
    raw = list(agent.stub.Deploy(request, timeout=120))
    return [deploy_seen(ev) for ev in raw], raw[-1]


def _page(agent, app) -> str:
    status, body = front_get(agent.front_door, f"{app}.localhost", "/log")
    return body if status == 200 else f"<{status}>"


def _serves(agent, app, body: str) -> bool:
    try:
        return _page(agent, app) == body
    except OSError:
        return False


def test_volume_is_kept_across_deploys_and_a_rollback(agent, app_name, docker_client, tmp_path,
                                                      volumes_swept):
    repo = make_sample_repo(tmp_path / "repo")
    v1 = _release(agent, app_name, repo, WRITER.format(version="v1"), 1)
    events, _ = _deploy(agent, app_name, v1, 1)
    assert events[-1].phase is Phase.DONE, events[-1]
    assert wait_until(lambda: _serves(agent, app_name, "v1\n"), 10), _page(agent, app_name)

    volume = docker_client.volumes.get(f"serversinc-{app_name}-data")
    assert volume.attrs["Labels"]["io.serversinc.app"] == app_name
    assert volume.attrs["Labels"]["io.serversinc.managed"] == "true"
    assert volume.attrs["Labels"]["io.serversinc.volume"] == "data"
    mounts = docker_client.containers.get(events[-1].container_id).attrs["Mounts"]
    assert [(m["Type"], m["Name"], m["Destination"]) for m in mounts] == [
        ("volume", f"serversinc-{app_name}-data", "/data")]

    v2 = _release(agent, app_name, repo, WRITER.format(version="v2"), 2)
    events, _ = _deploy(agent, app_name, v2, 2)
    assert events[-1].phase is Phase.DONE, events[-1]
    assert wait_until(lambda: _serves(agent, app_name, "v1\nv2\n"), 10), _page(agent, app_name)

    events, _ = _deploy(agent, app_name, v1, 3)  # a rollback: release 1's image and volumes again
    assert events[-1].phase is Phase.DONE, events[-1]
    assert wait_until(lambda: _serves(agent, app_name, "v1\nv2\nv1\n"), 10), _page(agent, app_name)


def _container_events(docker_client, app: str, since: float) -> list[tuple[int, str, str]]:
    """(time in ns, action, container id) of the app's container starts and deaths since `since`."""
    seen = docker_client.events(since=int(since), until=int(time.time()) + 1, decode=True,
                                filters={"type": "container", "label": f"io.serversinc.app={app}",
                                         "event": ["start", "die"]})
    return sorted((e["timeNano"], e["Action"], e["id"]) for e in seen)


def test_exclusive_deploy_runs_one_container_at_a_time(agent, app_name, docker_client, tmp_path,
                                                       volumes_swept):
    repo = make_sample_repo(tmp_path / "repo")
    v1 = _release(agent, app_name, repo, WRITER.format(version="v1"), 1)
    first, _ = _deploy(agent, app_name, v1, 1, exclusive_volumes=True)
    assert first[-1].phase is Phase.DONE, first[-1]
    old_id = first[-1].container_id
    v2 = _release(agent, app_name, repo, WRITER.format(version="v2"), 2)

    since = time.time() - 1
    events, last = _deploy(agent, app_name, v2, 2, exclusive_volumes=True)
    assert events[-1].phase is Phase.DONE, events[-1]
    new_id = events[-1].container_id
    assert wait_until(lambda: _serves(agent, app_name, "v1\nv2\n"), 10), _page(agent, app_name)

    assert last.result.unserved_seconds > 0
    served_nothing = [e.message for e in events if e.message.startswith("served nothing for ")]
    assert served_nothing == [f"served nothing for {last.result.unserved_seconds:.1f} s (exclusive "
                              "volumes: the old release stopped before the new one started)"]
    # The old container died before the new one started: never two on the volume.
    happened = [(action, cid) for _, action, cid in _container_events(docker_client, app_name, since)]
    assert happened.index(("die", old_id)) < happened.index(("start", new_id)), happened


def test_exclusive_deploy_that_fails_health_serves_the_old_release_again(
        agent, app_name, docker_client, tmp_path, volumes_swept):
    repo = make_sample_repo(tmp_path / "repo")
    v1 = _release(agent, app_name, repo, WRITER.format(version="v1"), 1)
    first, _ = _deploy(agent, app_name, v1, 1, exclusive_volumes=True)
    assert first[-1].phase is Phase.DONE, first[-1]
    old_id = first[-1].container_id
    mute = _release(agent, app_name, repo, MUTE, 2)

    events, _ = _deploy(agent, app_name, mute, 2, exclusive_volumes=True, health_timeout_seconds=3)
    assert events[-1].phase is Phase.HEALTH and events[-1].failure == pb.FAILURE_KIND_HEALTH, events[-1]
    messages = [e.message for e in events]
    assert any(m.startswith("stopping ") and "exclusive volumes" in m for m in messages), messages
    assert any(m.startswith("started the old release's ") and m.endswith("again: it serves")
               for m in messages), messages
    assert any(m.startswith("served nothing for ") for m in messages), messages

    # The same old container serves again (started twice: once by release 1, once again now).
    assert docker_client.containers.get(old_id).status == "running"
    assert wait_until(lambda: _serves(agent, app_name, "v1\nv1\n"), 10), _page(agent, app_name)
    assert [c.id for c in docker_client.containers.list(
        all=True, filters={"label": f"io.serversinc.app={app_name}"})] == [old_id]


def test_volumes_go_only_with_the_app_and_its_flag(agent, app_name, docker_client, tmp_path,
                                                   volumes_swept):
    # Volumes the platform does not own, named like the app's: never mounted, never removed.
    planted = docker_client.volumes.create(f"serversinc-{app_name}-data")
    stranger = docker_client.volumes.create(f"serversinc-{app_name}-other",
                                            labels={"io.serversinc.app": app_name})
    repo = make_sample_repo(tmp_path / "repo")
    v1 = _release(agent, app_name, repo, WRITER.format(version="v1"), 1)
    events, _ = _deploy(agent, app_name, v1, 1)
    assert events[-1].phase is Phase.START and events[-1].failure == pb.FAILURE_KIND_START, events[-1]
    assert (f"volume serversinc-{app_name}-data exists but is not {app_name}'s volume 'data' "
            "(the platform did not make it)") in events[-1].error
    planted.reload()
    assert not planted.attrs["Labels"]
    planted.remove()

    events, _ = _deploy(agent, app_name, v1, 2)
    assert events[-1].phase is Phase.DONE, events[-1]
    ours = f"serversinc-{app_name}-data"

    kept = agent.stub.RemoveApp(pb.RemoveAppRequest(app=app_name), timeout=60)
    assert (kept.removed, list(kept.kept_volumes), list(kept.removed_volumes)) == (1, [ours], [])
    docker_client.volumes.get(ours)
    # Known to the agent by its kept volume alone: deleted again, this time with the flag.
    removed = agent.stub.RemoveApp(pb.RemoveAppRequest(app=app_name, delete_volumes=True), timeout=60)
    assert (list(removed.removed_volumes), list(removed.kept_volumes)) == ([ours], [])
    with pytest.raises(docker.errors.NotFound):
        docker_client.volumes.get(ours)
    stranger.reload()  # untouched
    assert stranger.attrs["Labels"] == {"io.serversinc.app": app_name}
