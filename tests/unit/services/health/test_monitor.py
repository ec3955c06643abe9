"""HealthMonitor.poll against a real SQLite database and a fake agent: what it stores, when it
announces (once per transition), and what an unreachable server leaves behind."""

from __future__ import annotations

import json

import pytest

from services.agents.port import AgentUnavailable, ContainerView
from services.apps import status
from services.db.models import App, AppHealth, Deployment, Notification
from services.health.monitor import HealthMonitor


class FakeAgent:
    def __init__(self):
        self.containers: list[ContainerView] = []
        self.down = False
        self.calls = 0

    def __call__(self, server: str, timeout: float) -> list[ContainerView]:
        self.calls += 1
        if self.down:
            raise AgentUnavailable("agent at 127.0.0.1:1 is unreachable")
        return self.containers


def container(deployment_id: int, state: str = "running") -> ContainerView:
    return ContainerView(id="c" * 12, name="web-1", app="web", deployment_id=deployment_id, commit_sha="a" * 40,
                         image="web:1", state=state, direct_url="", created=None, serving=True, health="HEALTHY")


@pytest.fixture
def serving(db, make_app):
    """An app "web" with a succeeded, serving deployment and one notify URL; returns (app id, deployment id)."""
    app_id = make_app("web", notify_urls=["http://127.0.0.1:9/hook"])
    with db.session() as s:
        dep = Deployment(app_id=app_id, state="SUCCEEDED", phase="DONE", trigger="API", commit_sha="a" * 40)
        s.add(dep)
        s.flush()
        s.get(App, app_id).current_deployment_id = dep.id
        return app_id, dep.id


@pytest.fixture
def agent():
    return FakeAgent()


@pytest.fixture
def monitor(db, agent):
    woken = []
    m = HealthMonitor(db, agent, period=0.1, on_announced=lambda: woken.append(1))
    m.woken = woken
    yield m
    m.stop()


def stored(db, app_id) -> AppHealth:
    with db.read() as s:
        return s.get(AppHealth, app_id)


def bodies(db) -> list[dict]:
    with db.read() as s:
        return [json.loads(n.body) for n in s.query(Notification).order_by(Notification.id)]


def app_status(db, app_id) -> str:
    with db.read() as s:
        app = s.get(App, app_id)
    return status.overview(db, [app])[app_id].status


def test_down_and_back_are_announced_once_each_however_many_polls(db, serving, agent, monitor):
    app_id, dep_id = serving
    agent.containers = [container(dep_id)]
    assert monitor.poll() == 0 and stored(db, app_id).health == "HEALTHY"
    agent.containers = [container(dep_id, state="exited")]
    assert monitor.poll() == 1
    assert monitor.poll() == 0
    assert app_status(db, app_id) == "DOWN"
    assert "exited" in stored(db, app_id).detail
    agent.containers = [container(dep_id)]
    assert monitor.poll() == 1 and monitor.poll() == 0
    assert app_status(db, app_id) == "RUNNING"
    assert [b["event"] for b in bodies(db)] == ["app.down", "app.recovered"]
    assert bodies(db)[0]["deployment"]["name"] == f"apps/web/deployments/{dep_id}"
    assert len(monitor.woken) == 2


def test_an_unreachable_server_keeps_the_last_observation_marked_stale(db, serving, agent, monitor):
    app_id, dep_id = serving
    agent.containers = [container(dep_id, state="exited")]
    monitor.poll()
    seen = stored(db, app_id)
    agent.down = True
    assert monitor.poll() == 0
    after = stored(db, app_id)
    assert (after.health, after.stale, after.observed_at) == ("DOWN", True, seen.observed_at)
    assert app_status(db, app_id) == "DOWN"
    agent.down = False
    agent.containers = [container(dep_id)]
    monitor.poll()
    assert (stored(db, app_id).health, stored(db, app_id).stale) == ("HEALTHY", False)


def test_apps_without_a_serving_release_are_not_polled(db, make_app, agent, monitor):
    make_app("fresh")
    assert monitor.poll() == 0 and agent.calls == 0


def test_the_running_monitor_polls_by_itself(db, serving, agent, monitor):
    app_id, dep_id = serving
    agent.containers = [container(dep_id, state="exited")]
    monitor.start()
    for _ in range(200):
        if stored(db, app_id) is not None:
            break
        monitor._stop.wait(0.05)
    assert stored(db, app_id).health == "DOWN"
