"""An app's health over several servers, and during a rollout: assess.observe_app (pure, fake
container views) and the monitor's targets and round against a real SQLite database."""

from __future__ import annotations

from datetime import datetime, timezone

from services.agents.port import AgentUnavailable, ContainerView
from services.apps import placement
from services.db.models import App, AppHealth, AppServer, Deployment, Notification, Server
from services.health import repository as repo
from services.health.assess import Health, Previous, Watch, observe_app
from services.health.monitor import HealthMonitor

NOW = datetime(2024, 1, 1, tzinfo=timezone.utc)
OLD, NEW = 7, 8


def c(n: int, deployment: int = OLD, *, state: str = "running", serving: bool = True, restarts: int = 0,
      app: str = "web") -> ContainerView:
    return ContainerView(id=f"{n:012d}", name=f"web-{n}", app=app, deployment_id=deployment, commit_sha="",
                         image="", state=state, direct_url="", created=None, serving=serving, health="HEALTHY",
                         restart_count=restarts)


AB = [Watch("a", OLD, 2), Watch("b", OLD, 2)]


def test_healthy_when_every_server_runs_its_replicas():
    obs = observe_app(OLD, AB, {"a": [c(1), c(2)], "b": [c(3), c(4)]}, None, NOW)
    assert (obs.health, obs.detail) == (Health.HEALTHY, "")


def test_a_container_down_on_b_is_degraded_and_names_b():
    obs = observe_app(OLD, AB, {"a": [c(1), c(2)], "b": [c(3), c(4, state="exited")]}, None, NOW)
    assert obs.health == Health.DEGRADED
    assert obs.detail == "server 'b': 1 of 2 containers unhealthy: container web-4 is exited"


def test_a_server_with_nothing_is_degraded_and_every_server_down_is_down():
    obs = observe_app(OLD, AB, {"a": [c(1), c(2)], "b": []}, None, NOW)
    assert obs.health == Health.DEGRADED
    assert obs.detail == "server 'b': no container of the serving release on its server"
    obs = observe_app(OLD, AB, {"a": [c(1, state="exited")], "b": [c(3, NEW)]}, None, NOW)
    assert obs.health == Health.DOWN
    assert obs.detail.startswith("server 'a': container web-1 is exited; server 'b': no container"), obs.detail


def test_a_missing_replica_is_degraded():
    obs = observe_app(OLD, AB, {"a": [c(1), c(2)], "b": [c(3)]}, None, NOW)
    assert obs.health == Health.DEGRADED and obs.detail == "server 'b': 1 of 2 replicas missing"


def test_restarts_are_summed_over_servers_and_a_new_one_degrades():
    before = Previous(OLD, Health.HEALTHY, restart_count=1, restarted_at=None)
    obs = observe_app(OLD, AB, {"a": [c(1, restarts=1), c(2)], "b": [c(3), c(4, restarts=1)]}, before, NOW)
    assert obs.restart_count == 2 and obs.health == Health.DEGRADED and obs.restarted_at == NOW
    assert "restart count 2" in obs.detail


def test_a_silent_server_is_not_judged_never_proves_down_and_never_improves():
    # b silent, a fine: healthy as far as seen, said so.
    obs = observe_app(OLD, AB, {"a": [c(1), c(2)]}, None, NOW, silent={"b"})
    assert obs.health == Health.HEALTHY and obs.detail == "server 'b' did not answer: not observed"
    # a down, b silent: b may serve, so not DOWN.
    obs = observe_app(OLD, AB, {"a": [c(1, state="exited"), c(2, state="exited")]}, None, NOW, silent={"b"})
    assert obs.health == Health.DEGRADED
    # It was DOWN: a silent b cannot bring it back.
    was_down = Previous(OLD, Health.DOWN, 0, None)
    assert observe_app(OLD, AB, {"a": [c(1), c(2)]}, was_down, NOW, silent={"b"}).health == Health.DOWN


def rolling(a_replicas: int = 2) -> list[Watch]:
    return [Watch("a", OLD, 2, NEW, a_replicas), Watch("b", OLD, 2, NEW, 2)]


def test_during_a_rollout_each_server_is_judged_by_the_release_serving_there():
    # a is starting the new release next to the old one: the old one serves, the new is not foreign.
    starting = {"a": [c(1), c(2), c(5, NEW, serving=False)], "b": [c(3), c(4)]}
    assert observe_app(OLD, rolling(), starting, None, NOW).health == Health.HEALTHY
    # a switched: the new release serves there, the old one's containers are stopped; b still old.
    switched = {"a": [c(1, state="exited", serving=False), c(2, state="exited", serving=False),
                      c(5, NEW), c(6, NEW)], "b": [c(3), c(4)]}
    obs = observe_app(OLD, rolling(), switched, None, NOW)
    assert (obs.health, obs.detail, obs.deployment_id) == (Health.HEALTHY, "", OLD)
    # Both switched, the old release gone everywhere, before the rollout ends.
    done = {"a": [c(5, NEW), c(6, NEW)], "b": [c(7, NEW), c(8, NEW)]}
    assert observe_app(OLD, rolling(), done, None, NOW).health == Health.HEALTHY
    # A real fault of the release that serves on a still counts.
    broken = {"a": [c(5, NEW), c(6, NEW, state="exited")], "b": [c(3), c(4)]}
    obs = observe_app(OLD, rolling(), broken, None, NOW)
    assert obs.health == Health.DEGRADED and obs.detail.startswith("server 'a': 1 of 2")


def test_a_server_only_the_rollout_reaches_counts_once_it_serves_there():
    moving = [Watch("a", OLD, 1), Watch("b", None, 0, NEW, 1)]
    assert observe_app(OLD, moving, {"a": [c(1)], "b": [c(2, NEW, serving=False)]}, None, NOW).health == Health.HEALTHY
    obs = observe_app(OLD, moving, {"a": [c(1)], "b": [c(2, NEW, state="exited")]}, None, NOW)
    assert obs.health == Health.DEGRADED and "server 'b'" in obs.detail


# The monitor over two servers ("local" and "b") against the database.


class Agents:
    def __init__(self):
        self.containers: dict[str, list[ContainerView]] = {"local": [], "b": []}
        self.down: set[str] = set()

    def __call__(self, server: str, timeout: float) -> list[ContainerView]:
        if server in self.down:
            raise AgentUnavailable(f"agent of {server} is unreachable")
        return self.containers[server]


def two_servers(db, make_app) -> tuple[int, int]:
    app_id = make_app("web", notify_urls=["http://127.0.0.1:9/hook"], replicas=2)
    with db.session() as s:
        b = Server(name="b", address="127.0.0.1:2")
        s.add(b)
        s.flush()
        local = s.query(Server).filter_by(name="local").one()
        s.add_all([AppServer(app_id=app_id, server_id=local.id, position=0),
                   AppServer(app_id=app_id, server_id=b.id, position=1)])
        dep = Deployment(app_id=app_id, state="SUCCEEDED", phase="DONE", trigger="API", commit_sha="a" * 40,
                         server_outcomes=[placement.outcome("local", placement.SUCCEEDED, replicas=1),
                                          placement.outcome("b", placement.SUCCEEDED, replicas=1)])
        s.add(dep)
        s.flush()
        s.get(App, app_id).current_deployment_id = dep.id
        return app_id, dep.id


def events(db) -> list[str]:
    with db.read() as s:
        return [n.body for n in s.query(Notification).order_by(Notification.id)]


def test_the_monitor_watches_both_servers_and_stays_quiet_through_a_rollout(db, make_app):
    app_id, old = two_servers(db, make_app)
    agents = Agents()
    monitor = HealthMonitor(db, agents, period=0.1)
    try:
        agents.containers = {"local": [c(1, old)], "b": [c(2, old)]}
        assert monitor.poll() == 0
        with db.read() as s:
            assert s.get(AppHealth, app_id).health == "HEALTHY"
        agents.containers["b"] = [c(2, old, state="exited")]
        assert monitor.poll() == 0  # DEGRADED is not announced: only DOWN and back are
        with db.read() as s:
            row = s.get(AppHealth, app_id)
            assert (row.health, row.detail, row.stale) == ("DEGRADED", "server 'b': container web-2 is exited", False)
        agents.down = {"b"}
        monitor.poll()
        with db.read() as s:
            row = s.get(AppHealth, app_id)
            assert row.health == "DEGRADED" and row.stale and "'b' did not answer" in row.detail
        agents.down = set()

        # A rollout of a new deployment: local switches first, then b.
        with db.session() as s:
            new = Deployment(app_id=app_id, state="RUNNING", phase="START", trigger="API",
                             server_outcomes=[placement.outcome("local", placement.SUCCEEDED, replicas=1),
                                              placement.outcome("b", placement.PENDING, replicas=1)])
            s.add(new)
            s.flush()
            new_id = new.id
        with db.read() as s:
            [target] = [t for t in repo.targets(s) if t.app_id == app_id]
        assert [(w.server, w.deployment_id, w.rollout_id) for w in target.watches] == [
            ("local", old, new_id), ("b", old, new_id)]
        agents.containers = {"local": [c(1, old, state="exited", serving=False), c(3, new_id)], "b": [c(2, old)]}
        assert monitor.poll() == 0
        agents.containers = {"local": [c(3, new_id)], "b": [c(4, new_id)]}
        assert monitor.poll() == 0
        with db.read() as s:
            assert s.get(AppHealth, app_id).health == "HEALTHY"
        assert events(db) == []
    finally:
        monitor.stop()
