"""The recorder: events stored before watchers wake, gap-free seqs, phase timings, fenced outcomes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.core.states import EventKind, Phase, State
from services.db.models import Deployment, Notification
from services.deployments import repository as repo
from services.deployments.events import EventLog, Notifier
from services.deployments.recorder import Recorder
from services.deployments.service import DeploymentService
from services.jobs.cancels import CancelRegistry
from services.jobs.queue import JobQueue, StaleClaim


class StoredAtWake(Notifier):
    """Notes, at every wake-up, the newest seq a watcher would find stored."""

    def __init__(self, db):
        super().__init__()
        self.db = db
        self.seen: list[int] = []

    def notify(self, deployment_id: int) -> None:
        with self.db.read() as s:
            self.seen.append(repo.last_seq(s, deployment_id))
        super().notify(deployment_id)


@pytest.fixture
def notifier(db):
    return StoredAtWake(db)


@pytest.fixture
def events(db, notifier):
    return EventLog(db, notifier)


@pytest.fixture
def queue(db, clock):
    return JobQueue(db, lease_seconds=30, clock=clock)


@pytest.fixture
def start(db, events, queue, clock, make_app):
    """Queues a deployment of a new app, claims it, and returns its recorder (with the finished outcomes)."""

    def begin(**app_fields):
        make_app(**app_fields)
        DeploymentService(db, events, queue, CancelRegistry()).create("web")
        finished = []
        rec = Recorder(db, events, queue, queue.claim("w1"), finished.append, clock=clock)
        rec.finished = finished
        assert rec.begin() is not None
        return rec

    return begin


def stored(events, deployment_id):
    """Every event of a finished deployment."""
    return list(events.follow(deployment_id, 0))


def stored_so_far(db, deployment_id):
    """The events stored so far (the deployment may still run)."""
    with db.read() as s:
        return repo.events_after(s, deployment_id, 0)


def test_every_event_is_stored_before_watchers_are_woken(start, events, notifier):
    rec = start()
    notifier.seen.clear()

    rec.phase(Phase.RESOLVE)
    rec.log("commit abc")
    rec.progress(1, 3, "FROM scratch")
    rec.finish(State.SUCCEEDED)

    seqs = [e.seq for e in stored(events, rec.id)]
    # Each wake-up finds the event written just before it (and all before that) already stored.
    assert notifier.seen == seqs[-4:]


def test_seqs_are_gap_free_across_every_kind_of_write(start, events):
    rec = start()
    rec.phase(Phase.RESOLVE, "resolving")
    rec.log("one")
    events.emit_many(rec.id, [(EventKind.LOG, Phase.RESOLVE, "two", {}), (EventKind.LOG, Phase.RESOLVE, "three", {})])
    rec.progress(2, 7)
    rec.phase(Phase.BUILD)
    rec.finish(State.FAILED, reason="no luck")

    got = stored(events, rec.id)
    assert [e.seq for e in got] == list(range(1, len(got) + 1))
    assert [e.kind for e in got][:2] == [EventKind.STATE, EventKind.STATE]  # queued, then started
    assert got[-1].kind == EventKind.STATE and got[-1].state == State.FAILED


def test_phase_timings_follow_the_clock_and_close_at_the_end(db, start, clock):
    rec = start()
    t0 = clock.now
    rec.phase(Phase.RESOLVE)
    clock.advance(2)
    rec.phase(Phase.BUILD)
    clock.advance(3)
    rec.finish(State.SUCCEEDED)

    with db.read() as s:
        dep = s.get(Deployment, rec.id)
    iso = lambda seconds: (t0 + timedelta(seconds=seconds)).isoformat()
    assert dep.phase_timings == [
        {"phase": "RESOLVE", "start": iso(0), "end": iso(2)},
        {"phase": "BUILD", "start": iso(2), "end": iso(5)},
    ]
    assert (dep.state, dep.phase, dep.started_at, dep.finished_at) == ("SUCCEEDED", "DONE", t0, t0 + timedelta(seconds=5))


def test_a_failure_records_the_phase_reason_and_notification_with_the_outcome(db, start):
    rec = start(notify_urls=["http://127.0.0.1:1/hook"])
    rec.phase(Phase.BUILD)
    rec.finish(State.FAILED, reason="build failed: exit 1")

    with db.read() as s:
        dep = s.get(Deployment, rec.id)
        notifications = s.query(Notification).filter_by(deployment_id=rec.id).all()
    assert (dep.failure_phase, dep.failure_reason) == ("BUILD", "build failed: exit 1")
    assert len(notifications) == 1 and '"deployment.failed"' in notifications[0].body
    assert [(f.state, f.failure_phase) for f in rec.finished] == [("FAILED", "BUILD")]


def test_an_attempt_that_lost_its_claim_cannot_finish(db, start, events, queue, clock):
    rec = start(notify_urls=["http://127.0.0.1:1/hook"])
    rec.phase(Phase.BUILD)
    clock.advance(30)
    assert queue.claim("w2").attempt == 2
    before = [e.seq for e in stored_so_far(db, rec.id)]

    with pytest.raises(StaleClaim):
        rec.finish(State.FAILED, reason="too late")

    with db.read() as s:
        dep = s.get(Deployment, rec.id)
        assert s.query(Notification).count() == 0
    assert (dep.state, dep.failure_reason) == ("RUNNING", "")
    assert [e.seq for e in stored_so_far(db, rec.id)] == before
    assert rec.finished == []

