"""The health monitor over an app on two real hosts (namespace hosts): a container killed on b makes
the app DEGRADED naming b (a still serves), and a rolling release, whose servers switch one at a
time, announces no app.down on the way."""

from __future__ import annotations

import json

import pytest
from serversinc.v1 import app_pb2, app_service_pb2, deployment_pb2, deployment_service_pb2

from services.db.models import Notification
from tests.fleet.test_hosts import deployed, unique, via_front_door
from tests.fleet.test_rollout import wait_for
from tests.integration.test_observability import Receiver
from tests.support.sample_app import commit_version, make_sample_repo, repo_url

pytestmark = pytest.mark.docker
ALARMS = ("app.down", "app.degraded")


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def events(receiver) -> list[str]:
    return [json.loads(body)["event"] for _, body in receiver.received]


def queued_events(fleet) -> list[str]:
    with fleet.cp.platform.db.read() as s:
        return [json.loads(n.body)["event"] for n in s.query(Notification).order_by(Notification.id)]


def get_app(fleet, name: str) -> app_pb2.App:
    return fleet.cp.apps.GetApp(app_service_pb2.GetAppRequest(name=name))


def test_a_container_killed_on_b_degrades_the_app_naming_b_and_a_rollout_raises_no_alarm(
        fleet, tmp_path, receiver):
    a, b = fleet.servers["a"], fleet.servers["b"]
    monitor = fleet.cp.platform.health
    app = unique()
    repo = make_sample_repo(tmp_path / "repo", f"v1-{app}")
    fleet.app(app, repo_url(repo), "a", servers=["a", "b"], replicas=2, notify_urls=[receiver.url])
    first = deployed(fleet, app)

    monitor.poll()
    seen = get_app(fleet, app)
    assert seen.status == app_pb2.APP_STATUS_RUNNING and seen.health_detail == "" and not seen.health_stale, seen

    # Kill b's one replica: b serves nothing, a still does.
    with b.docker() as engine:
        [victim] = engine.containers.list(filters={"label": f"io.serversinc.app={app}"})
        victim.kill()
    monitor.poll()
    seen = get_app(fleet, app)
    assert seen.status == app_pb2.APP_STATUS_DEGRADED, seen
    assert seen.health_detail.startswith("server 'b': container "), seen.health_detail
    assert "'a'" not in seen.health_detail
    assert f"v1-{app}" in via_front_door(a, first.url).text

    # A rolling release (a first, then b), polled all the way through.
    commit_version(repo, f"v2-{app}")
    running = fleet.cp.deploy(app)
    polls_while_running = 0
    while True:
        dep = fleet.cp.deployments.GetDeployment(deployment_service_pb2.GetDeploymentRequest(name=running.name))
        if dep.state not in (deployment_pb2.DEPLOYMENT_STATE_QUEUED, deployment_pb2.DEPLOYMENT_STATE_RUNNING):
            break
        if dep.state == deployment_pb2.DEPLOYMENT_STATE_RUNNING:
            polls_while_running += 1
        monitor.poll()
    assert dep.state == deployment_pb2.DEPLOYMENT_STATE_SUCCEEDED, dep
    assert polls_while_running > 0
    monitor.poll()
    seen = get_app(fleet, app)
    assert seen.status == app_pb2.APP_STATUS_RUNNING and seen.health_detail == "", seen
    for host in (a, b):
        assert f"v2-{app}" in via_front_door(host, dep.url).text

    # Both releases' successes reached the receiver, and no alarm was ever queued or sent.
    wait_for(lambda: events(receiver).count("deployment.succeeded") == 2, what="both deployments announced")
    assert not [e for e in queued_events(fleet) if e in ALARMS], queued_events(fleet)
    assert not [e for e in events(receiver) if e in ALARMS], events(receiver)
