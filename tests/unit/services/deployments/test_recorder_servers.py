"""The recorder's view of an app on several servers: the snapshot's servers, replicas and where the
serving release runs; each server's outcome stored fenced."""

from __future__ import annotations

import pytest

from services.apps import placement
from services.apps import repository as apps_repo
from services.core.states import Phase, State
from services.db.models import App, Deployment, Server
from services.deployments.events import EventLog, Notifier
from services.deployments.recorder import Recorder
from services.deployments.service import DeploymentService
from services.jobs.cancels import CancelRegistry
from services.jobs.queue import JobQueue, StaleClaim


@pytest.fixture
def queue(db, clock):
    return JobQueue(db, lease_seconds=30, clock=clock)


@pytest.fixture
def events(db):
    return EventLog(db, Notifier())


@pytest.fixture
def web(db, make_app):
    """App "web" on servers local, b, c (in that order) with 5 replicas."""
    app_id = make_app(replicas=5)
    with db.session() as s:
        s.add_all([Server(name="b", address="127.0.0.1:2"), Server(name="c", address="127.0.0.1:3")])
        s.flush()
        app = s.get(App, app_id)
        apps_repo.set_app_servers(s, app, [s.query(Server).filter_by(name=n).one() for n in ("local", "b", "c")])
    return app_id


def begin(db, events, queue, clock):
    DeploymentService(db, events, queue, CancelRegistry()).create("web")
    rec = Recorder(db, events, queue, queue.claim("w1"), clock=clock)
    return rec, rec.begin()


def serving(db, app_id, outcomes):
    """A finished deployment of the app that serves, with these outcomes."""
    with db.session() as s:
        dep = Deployment(app_id=app_id, state=str(State.SUCCEEDED), phase=str(Phase.DONE), trigger="API",
                         server_outcomes=outcomes)
        s.add(dep)
        s.flush()
        s.get(App, app_id).current_deployment_id = dep.id


def test_the_snapshot_names_the_servers_in_rollout_order_and_the_replicas(db, events, queue, clock, web):
    _, snap = begin(db, events, queue, clock)
    assert (snap.server_name, snap.servers, snap.replicas) == ("local", ("local", "b", "c"), 5)
    assert snap.previous_servers == ()  # nothing serves yet


def test_the_previous_release_runs_where_its_deployment_succeeded(db, events, queue, clock, web):
    serving(db, web, [placement.outcome("local", "SUCCEEDED", replicas=2),
                      placement.outcome("b", "ROLLED_BACK", replicas=2),
                      placement.outcome("c", "SUCCEEDED", replicas=1)])
    _, snap = begin(db, events, queue, clock)
    assert snap.previous_servers == ("local", "c")


def test_a_serving_deployment_recorded_before_outcomes_runs_on_the_apps_server(db, events, queue, clock, web):
    serving(db, web, [])
    _, snap = begin(db, events, queue, clock)
    assert snap.previous_servers == ("local",)


def test_an_app_without_app_servers_rows_runs_on_its_server(db, events, queue, clock, make_app):
    make_app()
    _, snap = begin(db, events, queue, clock)
    assert (snap.servers, snap.replicas) == (("local",), 1)


def test_server_outcomes_and_the_digest_are_stored(db, events, queue, clock, web):
    rec, _ = begin(db, events, queue, clock)
    rec.record_server_outcomes([{"server": "local", "state": "SUCCEEDED", "phase": "DONE", "reason": "", "replicas": 2},
                                {"server": "b", "state": "FAILED", "phase": "HEALTH", "reason": "unhealthy", "replicas": 2},
                                {"server": "c", "state": "SKIPPED", "phase": "", "reason": "b failed", "replicas": 1}])
    rec.update(image_digest="registry.test/web@sha256:" + "a" * 64)
    with db.read() as s:
        dep = s.get(Deployment, rec.id)
        assert [(o["server"], o["state"], o["phase"]) for o in dep.server_outcomes] == [
            ("local", "SUCCEEDED", "DONE"), ("b", "FAILED", "HEALTH"), ("c", "SKIPPED", "")]
        assert dep.server_outcomes[1]["reason"] == "unhealthy"
        assert dep.image_digest.endswith("a" * 64)


def test_a_malformed_outcome_is_refused_and_stores_nothing(db, events, queue, clock, web):
    rec, _ = begin(db, events, queue, clock)
    with pytest.raises(ValueError):
        rec.record_server_outcomes([{"server": "local", "state": "DONE"}])
    with db.read() as s:
        assert s.get(Deployment, rec.id).server_outcomes == []


def test_a_stale_attempt_cannot_record_outcomes(db, events, queue, clock, web):
    rec, _ = begin(db, events, queue, clock)
    clock.advance(30)
    assert queue.claim("w2").attempt == 2
    with pytest.raises(StaleClaim):
        rec.record_server_outcomes([placement.outcome("local", "SUCCEEDED")])
    with db.read() as s:
        assert s.get(Deployment, rec.id).server_outcomes == []
