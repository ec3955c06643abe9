"""App status tells what serves: a failed deployment beside the serving release, and DOWN / back to
RUNNING between deploys as the health monitor sees the agent's containers, each announced once."""

from __future__ import annotations

import json
import time

import pytest
from serversinc.v1 import app_pb2, app_service_pb2, deployment_pb2

from tests.integration.conftest import fetch
from tests.integration.test_observability import Receiver
from tests.support.sample_app import DOCKERFILE, commit_files

S = deployment_pb2
SERVE = 'CMD ["/bin/busybox","httpd","-f","-p","8080","-h","/www"]'


@pytest.fixture
def fast_health(monkeypatch):
    """A monitor period short enough for a test; set before the control plane reads its settings."""
    monkeypatch.setenv("SERVERSINC_HEALTH_POLL_SECONDS", "0.5")


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def get_app(control_plane, name: str) -> app_pb2.App:
    return control_plane.apps.GetApp(app_service_pb2.GetAppRequest(name=name))


def wait_app(control_plane, name: str, predicate, timeout: float = 30) -> app_pb2.App:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        app = get_app(control_plane, name)
        if predicate(app):
            return app
        time.sleep(0.1)
    raise AssertionError(f"app {name} did not reach the expected status: {get_app(control_plane, name)}")


def health_events(receiver) -> list[str]:
    return [e for e in (json.loads(body)["event"] for _, body in receiver.received) if e.startswith("app.")]


def wait_events(receiver, expected: list[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while health_events(receiver) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert health_events(receiver) == expected


def test_a_failed_deploy_leaves_the_app_running_its_release_and_down_and_back_are_announced(
        fast_health, control_plane, sample_repo, sample_url, app_name, docker_client, receiver):
    control_plane.create_app(app_name, sample_url, notify_urls=[receiver.url], health_timeout_seconds=2)
    first = control_plane.wait(control_plane.deploy(app_name).name)
    assert first.state == S.DEPLOYMENT_STATE_SUCCEEDED, first.failure_reason
    commit_files(sample_repo, {"Dockerfile": DOCKERFILE.replace(SERVE, 'CMD ["/bin/busybox","sleep","600"]')},
                 "never listens")
    bad = control_plane.wait(control_plane.deploy(app_name).name)
    assert bad.state == S.DEPLOYMENT_STATE_FAILED and bad.failure_phase == S.DEPLOYMENT_PHASE_HEALTH

    app = wait_app(control_plane, app_name, lambda a: a.HasField("health_observe_time"))
    assert app.status == app_pb2.APP_STATUS_RUNNING, app
    assert (app.current_deployment, app.current_commit, app.url) == (first.name, first.commit_sha, first.url)
    assert (app.latest_deployment, app.latest_deployment_failed) == (bad.name, True)
    assert "sample app v1" in fetch(app.url)

    serving = docker_client.containers.get(first.container_id)
    serving.kill()
    down = wait_app(control_plane, app_name, lambda a: a.status == app_pb2.APP_STATUS_DOWN)
    assert down.health_detail and not down.health_stale
    assert down.current_deployment == first.name  # still the release it runs, not a failure of its own
    wait_events(receiver, ["app.down"])
    assert control_plane.platform.health.poll() == 0  # still down: nothing more to announce

    serving.start()
    wait_app(control_plane, app_name, lambda a: a.status == app_pb2.APP_STATUS_RUNNING)
    wait_events(receiver, ["app.down", "app.recovered"])
    assert control_plane.platform.health.poll() == 0
    payload = next(json.loads(b) for _, b in receiver.received if json.loads(b)["event"] == "app.recovered")
    assert payload["app"] == app_name and payload["deployment"]["name"] == first.name
