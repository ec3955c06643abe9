"""The recorder: events stored before watchers wake, gap-free seqs, phase timings, fenced outcomes."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import event as sa_event

from services.core.states import EventKind, Phase, State
from services.db.models import Deployment, Notification
from services.deployments import repository as repo
from services.deployments.events import EventLog, Notifier
from services.deployments import recorder as recorder_module
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
    return events.stored(deployment_id)


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
    # Each wake-up finds everything written before it already stored: the phase, then the
    # buffered line and progress together with the outcome.
    assert notifier.seen == [seqs[-4], seqs[-1]]


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



@pytest.mark.parametrize("write", [
    lambda rec: rec.phase(Phase.START),
    lambda rec: (rec.log("a line"), rec.flush()),
    lambda rec: (rec.progress(1, 2), rec.flush()),
    lambda rec: rec.update(image="web:stale"),
    lambda rec: rec.finish(State.SUCCEEDED),
], ids=["phase", "log", "progress", "update", "finish"])
def test_every_write_of_a_stale_attempt_is_refused_and_stores_nothing(db, start, queue, clock, write):
    rec = start()
    rec.phase(Phase.BUILD)
    clock.advance(30)
    assert queue.claim("w2").attempt == 2
    before = [e.seq for e in stored_so_far(db, rec.id)]

    with pytest.raises(StaleClaim):
        write(rec)

    with db.read() as s:
        dep = s.get(Deployment, rec.id)
    assert (dep.state, dep.phase, dep.image) == ("RUNNING", "BUILD", "")
    assert [e.seq for e in stored_so_far(db, rec.id)] == before


def test_lines_are_buffered_then_stored_in_order_before_the_next_phase(db, start):
    rec = start()
    rec.phase(Phase.BUILD)
    stored_before = len(stored_so_far(db, rec.id))
    rec.log("one")
    rec.progress(1, 2, "FROM scratch")
    rec.log("two")
    assert len(stored_so_far(db, rec.id)) == stored_before  # still buffered

    rec.phase(Phase.START)
    got = [(e.kind, e.message) for e in stored_so_far(db, rec.id)][stored_before:]
    assert got == [(EventKind.LOG, "one"), (EventKind.PROGRESS, "FROM scratch"), (EventKind.LOG, "two"),
                   (EventKind.PHASE, "start")]


def test_a_burst_of_lines_is_stored_in_a_few_transactions(db, start, events):
    rec = start()
    commits = []
    listener = lambda conn: commits.append(1)
    sa_event.listen(db.engine, "commit", listener)
    try:
        for i in range(1000):
            rec.log(f"line {i}")
        rec.finish(State.SUCCEEDED)
    finally:
        sa_event.remove(db.engine, "commit", listener)
    lines = [e.message for e in stored(events, rec.id) if e.kind == EventKind.LOG]
    assert lines == [f"line {i}" for i in range(1000)]
    # Batches of BATCH_EVENTS, the rest with the outcome (and at most one timer flush between).
    assert len(commits) <= 1000 // recorder_module.BATCH_EVENTS + 2


def test_a_lone_line_reaches_watchers_without_another_write(db, start, events):
    rec = start()
    woken = threading.Event()
    events.notifier.subscribe(rec.id, woken.set)
    rec.log("only line")
    assert woken.wait(timeout=10)  # the timer flushed it and woke the watchers
    assert stored_so_far(db, rec.id)[-1].message == "only line"


def test_the_stored_log_is_capped_with_one_truncation_event(db, start, events, monkeypatch):
    monkeypatch.setattr(recorder_module, "MAX_LOG_LINES", 5)
    rec = start()
    for i in range(10):
        rec.log(f"line {i}")
    rec.phase(Phase.START)  # the build goes on past the cap
    rec.finish(State.SUCCEEDED)

    got = stored(events, rec.id)
    lines = [e.message for e in got if e.kind == EventKind.LOG]
    assert lines[:5] == [f"line {i}" for i in range(5)]
    assert len(lines) == 6 and lines[5].startswith("log truncated")
    assert rec.lines_not_stored == 5
    assert got[-1].state == State.SUCCEEDED


def test_a_later_attempt_counts_the_earlier_attempts_lines_towards_the_cap(db, start, events, queue, clock,
                                                                              monkeypatch):
    monkeypatch.setattr(recorder_module, "MAX_LOG_LINES", 3)
    rec = start()
    for i in range(4):
        rec.log(f"first attempt {i}")
    rec.flush()
    clock.advance(30)
    again = Recorder(db, events, queue, queue.claim("w2"), clock=clock)
    assert again.begin() is not None
    again.log("second attempt")
    again.finish(State.SUCCEEDED)

    lines = [e.message for e in stored(events, rec.id) if e.kind == EventKind.LOG]
    assert len(lines) == 4 and sum(m.startswith("log truncated") for m in lines) == 1
    assert again.lines_not_stored == 1


def test_a_watch_whose_first_read_missed_the_terminal_commit_still_gets_the_terminal_event(
        start, events, monkeypatch):
    """On PostgreSQL each statement sees the commits before it: the terminal event and state can
    be committed between a watch's read of events (none new) and its read of the state
    (terminal). The watch must read the events again, not end without the terminal one."""
    import asyncio

    from services.deployments import feed as feed_module
    from services.deployments.feed import Feeds

    rec = start()
    rec.phase(Phase.BUILD)
    watched_so_far = stored(events, rec.id)
    rec.finish(State.SUCCEEDED)
    real = feed_module.repo.events_after
    calls = []

    def first_read_before_the_commit(session, deployment_id, after, limit=None):
        calls.append(after)
        if len(calls) == 1:  # the commit lands after this statement's snapshot
            return [r for r in real(session, deployment_id, after, limit) if r.seq <= watched_so_far[-1].seq]
        return real(session, deployment_id, after, limit)
    monkeypatch.setattr(feed_module.repo, "events_after", first_read_before_the_commit)

    async def watch():
        feeds = Feeds(events)
        try:
            return [e async for e in feeds.follow(rec.id, watched_so_far[-1].seq)]
        finally:
            feeds.close()
    got = asyncio.run(asyncio.wait_for(watch(), 10))
    assert got and got[-1].kind == EventKind.STATE and got[-1].state == State.SUCCEEDED
