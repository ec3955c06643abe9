"""Ordering, concurrency, cancellation and deadlines of deployments."""

from __future__ import annotations

import threading
import time

import grpc
import pytest
from serversinc.v1 import deployment_pb2, deployment_service_pb2

from tests.integration.conftest import fetch
from tests.support.sample_app import DOCKERFILE, commit_files, make_sample_repo, repo_url, slow_step

S = deployment_pb2


def cancel(control_plane, name):
    return control_plane.deployments.CancelDeployment(deployment_service_pb2.CancelDeploymentRequest(name=name))


def test_two_apps_deploy_concurrently_without_crossing(control_plane, tmp_path, make_app_name):
    a, b = make_app_name(), make_app_name()
    repo_a = make_sample_repo(tmp_path / "a", "alpha")
    repo_b = make_sample_repo(tmp_path / "b", "beta")
    control_plane.create_app(a, repo_url(repo_a))
    control_plane.create_app(b, repo_url(repo_b))
    deps = [control_plane.deploy(a, rebuild=True), control_plane.deploy(b, rebuild=True)]
    done = [control_plane.wait(d.name) for d in deps]
    assert [d.state for d in done] == [S.DEPLOYMENT_STATE_SUCCEEDED] * 2
    assert "sample app alpha" in fetch(done[0].url) and "sample app beta" in fetch(done[1].url)
    # They overlapped in time: b started before a finished.
    assert done[1].start_time.ToDatetime() < done[0].end_time.ToDatetime()
    assert done[0].image.startswith(f"{a}:") and done[1].image.startswith(f"{b}:")


def test_deploys_of_one_app_run_one_after_the_other_in_order(control_plane, sample_url, app_name):
    control_plane.create_app(app_name, sample_url)
    deps = [control_plane.deploy(app_name) for _ in range(3)]
    positions = [control_plane.get(d.name).queue_position for d in deps]
    # The first may already be running; the rest wait in order.
    assert positions[1:] == sorted(positions[1:]) and positions[2] > 0
    done = [control_plane.wait(d.name) for d in deps]
    assert all(d.state == S.DEPLOYMENT_STATE_SUCCEEDED for d in done), [d.failure_reason for d in done]
    for earlier, later in zip(done, done[1:]):
        assert earlier.end_time.ToDatetime() <= later.start_time.ToDatetime()


def test_cancelling_a_slow_build_kills_only_that_build(control_plane, sample_repo, sample_url, tmp_path, make_app_name, docker_client):
    app, other = make_app_name(), make_app_name()
    control_plane.create_app(app, sample_url)
    first = control_plane.wait(control_plane.deploy(app).name)
    assert first.state == S.DEPLOYMENT_STATE_SUCCEEDED

    other_repo = make_sample_repo(tmp_path / "other", "other")
    commit_files(other_repo, {"Dockerfile": DOCKERFILE + slow_step(3)}, "a 3 s build")
    control_plane.create_app(other, repo_url(other_repo))
    commit_files(sample_repo, {"Dockerfile": DOCKERFILE + slow_step(30)}, "slow build")

    slow = control_plane.deploy(app)
    concurrent = control_plane.deploy(other)
    control_plane.wait_state(slow.name, lambda d: d.phase == S.DEPLOYMENT_PHASE_BUILD and d.state == S.DEPLOYMENT_STATE_RUNNING)
    time.sleep(1.0)  # inside the RUN sleep step
    cancel(control_plane, slow.name)
    ended = control_plane.wait(slow.name, timeout=30)  # the RUN step alone sleeps 30 s
    assert ended.state == S.DEPLOYMENT_STATE_CANCELLED
    assert ended.failure_phase == S.DEPLOYMENT_PHASE_BUILD
    assert "sample app v1" in fetch(first.url)  # the old release still serves

    other_done = control_plane.wait(concurrent.name, timeout=60)
    assert other_done.state == S.DEPLOYMENT_STATE_SUCCEEDED, other_done.failure_reason
    assert "sample app other" in fetch(other_done.url)
    # Nothing of the cancelled build keeps running.
    leftovers = [c for c in docker_client.containers.list() if "sleep 30" in " ".join(c.attrs["Config"].get("Cmd") or [])]
    assert leftovers == []


def test_cancelling_a_queued_deployment_and_a_finished_one(control_plane, sample_repo, sample_url, app_name):
    control_plane.create_app(app_name, sample_url)
    commit_files(sample_repo, {"Dockerfile": DOCKERFILE + slow_step(2)}, "2 s build")
    running = control_plane.deploy(app_name)
    queued = control_plane.deploy(app_name)
    assert cancel(control_plane, queued.name).state == S.DEPLOYMENT_STATE_CANCELLED
    done = control_plane.wait(running.name)
    assert done.state == S.DEPLOYMENT_STATE_SUCCEEDED
    with pytest.raises(grpc.RpcError) as info:
        cancel(control_plane, running.name)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert control_plane.get(queued.name).state == S.DEPLOYMENT_STATE_CANCELLED


def test_a_build_that_overruns_its_deadline_fails(control_plane, sample_repo, sample_url, app_name):
    control_plane.create_app(app_name, sample_url, build_timeout_seconds=2)
    commit_files(sample_repo, {"Dockerfile": DOCKERFILE + slow_step(30)}, "slow build")
    dep = control_plane.wait(control_plane.deploy(app_name).name)
    assert dep.state == S.DEPLOYMENT_STATE_FAILED
    assert dep.failure_phase == S.DEPLOYMENT_PHASE_BUILD
    assert "deadline of 2s" in dep.failure_reason


def test_a_watcher_that_joins_late_gets_everything(control_plane, sample_url, app_name):
    control_plane.create_app(app_name, sample_url)
    dep = control_plane.deploy(app_name)
    seen = []
    t = threading.Thread(target=lambda: seen.extend(control_plane.events(dep.name)))
    time.sleep(0.5)
    t.start()
    t.join(60)
    assert seen[0].seq == 1 and seen[-1].state == S.DEPLOYMENT_STATE_SUCCEEDED
