"""The job queue and its claims: one job per app at a time, oldest first, leases, fenced attempts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.core.states import Phase, State
from services.db.models import Deployment, Job
from services.jobs.queue import JobQueue, StaleClaim

LEASE = 30.0


@pytest.fixture
def queue(db, clock):
    return JobQueue(db, lease_seconds=LEASE, clock=clock)


@pytest.fixture
def enqueue(db, queue):
    """Adds a queued deployment of the app and its job; returns the deployment id."""

    def add(app_id: int) -> int:
        with db.session() as s:
            dep = Deployment(app_id=app_id, state=str(State.QUEUED), phase=str(Phase.QUEUED), trigger="API")
            s.add(dep)
            s.flush()
            queue.enqueue(s, dep.id, app_id)
            return dep.id

    return add


def finish(db, queue, claim) -> None:
    with db.session() as s:
        queue.finish(s, claim)


def test_one_job_per_app_at_a_time_oldest_first(db, queue, make_app, enqueue):
    web, api = make_app("web"), make_app("api")
    web1, web2, api1 = enqueue(web), enqueue(web), enqueue(api)

    first = queue.claim("w1")
    second = queue.claim("w1")
    assert (first.deployment_id, second.deployment_id) == (web1, api1)
    assert queue.claim("w1") is None  # web2 waits behind web1

    finish(db, queue, first)
    third = queue.claim("w1")
    assert third.deployment_id == web2 and third.attempt == 1


def test_jobs_of_different_apps_are_claimed_in_the_order_they_were_queued(queue, make_app, enqueue):
    apps = [make_app(name) for name in ("c", "a", "b")]
    queued = [enqueue(app) for app in apps]
    assert [queue.claim("w1").deployment_id for _ in queued] == queued
    assert queue.claim("w1") is None


def test_an_expired_lease_makes_the_job_claimable_again_as_the_next_attempt(queue, clock, make_app, enqueue):
    dep = enqueue(make_app())
    held = queue.claim("w1")
    clock.advance(LEASE - 1)
    assert queue.claim("w2") is None

    clock.advance(1)
    taken = queue.claim("w2")
    assert (taken.deployment_id, taken.worker, taken.attempt) == (dep, "w2", 2)
    assert taken.job_id == held.job_id


def test_a_heartbeat_keeps_the_claim(queue, clock, make_app, enqueue):
    enqueue(make_app())
    held = queue.claim("w1")
    clock.advance(LEASE - 1)
    queue.heartbeat([held.job_id], "w1")
    clock.advance(LEASE - 1)
    assert queue.claim("w2") is None
    assert queue.seconds_until_lease_expiry() == 1.0


def test_another_workers_heartbeat_does_not_extend_a_claim(queue, clock, make_app, enqueue):
    enqueue(make_app())
    held = queue.claim("w1")
    clock.advance(LEASE - 1)
    queue.heartbeat([held.job_id], "w2")
    clock.advance(1)
    assert queue.claim("w2") is not None


def test_a_stale_attempt_cannot_finish_and_the_current_one_can(db, queue, clock, make_app, enqueue):
    enqueue(make_app())
    stale = queue.claim("w1")
    clock.advance(LEASE)
    current = queue.claim("w1")  # the same worker name, a later attempt

    with pytest.raises(StaleClaim):
        finish(db, queue, stale)
    with db.read() as s:
        assert s.get(Job, current.job_id).status == "claimed"

    finish(db, queue, current)
    with db.read() as s:
        assert s.get(Job, current.job_id).status == "done"


def test_release_all_makes_every_claim_claimable_at_once(queue, make_app, enqueue):
    enqueue(make_app("web"))
    enqueue(make_app("api"))
    queue.claim("gone")
    queue.claim("gone")
    assert queue.claim("w1") is None

    assert queue.release_all() == 2
    assert [queue.claim("w1").attempt, queue.claim("w1").attempt] == [2, 2]


def test_a_discarded_job_is_never_claimed(db, queue, make_app, enqueue):
    web = make_app()
    cancelled, later = enqueue(web), enqueue(web)
    with db.session() as s:
        queue.discard(s, cancelled)
    assert queue.claim("w1").deployment_id == later


def test_lease_expiry_is_reported_for_the_idle_wait(queue, clock, make_app, enqueue):
    assert queue.seconds_until_lease_expiry() is None
    enqueue(make_app())
    queue.claim("w1")
    clock.advance(10)
    assert queue.seconds_until_lease_expiry() == LEASE - 10
    clock.advance(LEASE)
    assert queue.seconds_until_lease_expiry() == 0.0



def test_leases_are_measured_on_the_database_clock(db, make_app, enqueue):
    on_db_clock = JobQueue(db, lease_seconds=LEASE)  # no process clock: the database's
    enqueue(make_app())
    with db.read() as s:
        before = db.now(s)
    held = on_db_clock.claim("w1")
    with db.read() as s:
        lease_until = s.get(Job, held.job_id).lease_until
        after = db.now(s)
    assert before + timedelta(seconds=LEASE) <= lease_until <= after + timedelta(seconds=LEASE)

    with db.session() as s:  # the lease ran out a moment ago, by the database's clock
        s.get(Job, held.job_id).lease_until = db.now(s) - timedelta(seconds=1)
    assert on_db_clock.claim("w2").attempt == 2


def test_fence_passes_only_for_the_attempt_that_holds_the_job(db, queue, clock, make_app, enqueue):
    enqueue(make_app())
    stale = queue.claim("w1")
    with db.session() as s:
        queue.fence(s, stale)
    clock.advance(LEASE)
    current = queue.claim("w1")

    with pytest.raises(StaleClaim), db.session() as s:
        queue.fence(s, stale)
    with db.session() as s:
        queue.fence(s, current)
