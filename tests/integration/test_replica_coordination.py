"""Replicas on one real PostgreSQL database: what two control-plane processes must agree on.

Each "replica" here is a Database of its own (its own engine, pool and connections, its own bus
listener), as a second process would have: claims of one app never overlap and keep their order,
event numbers never collide, a cancel or a new job published by one is heard by the other at
commit, and a notification due once is claimed by one sender only.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import pytest

from services.core.states import EventKind, Phase
from services.db.models import App, Deployment, Notification, Server, utcnow
from services.db.pubsub import Bus
from services.db.session import Database
from services.deployments import repository as deployments_repo
from services.deployments.events import EventLog
from services.jobs.cancels import CancelRegistry
from services.jobs.queue import JobQueue
from services.notifications import outbox

# Few apps and many workers: most claimers race for the same apps' jobs at once.
APPS = 3
JOBS_PER_APP = 20


@pytest.fixture
def replicas(postgres_url):
    """Two replicas' databases on one fresh PostgreSQL database with the schema at head."""
    first, second = Database(postgres_url), Database(postgres_url)
    first.create_schema()
    yield first, second
    first.dispose()
    second.dispose()


def seed(db: Database, apps: int, jobs_per_app: int) -> list[int]:
    """`apps` apps with `jobs_per_app` queued deployments each, interleaved; returns deployment ids."""
    queue = JobQueue(db)
    with db.session() as s:
        server = Server(name="local", address="127.0.0.1:1")
        s.add(server)
        rows = [App(name=f"app-{i}", repo_url="/nonexistent", branch="main", port=8080, health_path="/",
                    dockerfile="Dockerfile", context_dir=".", server=server) for i in range(apps)]
        s.add_all(rows)
        s.flush()
        deps = [Deployment(app=app, app_id=app.id, state="QUEUED", phase="QUEUED", trigger="API", created_at=utcnow())
                for _ in range(jobs_per_app) for app in rows]
        s.add_all(deps)
        s.flush()
        for dep in deps:
            queue.enqueue(s, dep.id, dep.app_id)
        return [d.id for d in deps]


def test_one_apps_jobs_never_overlap_and_keep_their_order_across_replicas(replicas):
    seed(replicas[0], APPS, JOBS_PER_APP)
    queues = [JobQueue(db, lease_seconds=60) for db in replicas]
    runs: dict[int, list[tuple[int, float, float]]] = defaultdict(list)  # app -> (job, start, end)
    finished: list[int] = []
    lock = threading.Lock()

    def work(queue: JobQueue, name: str) -> None:
        while True:
            claim = queue.claim(name)
            if claim is None:
                with lock:
                    if len(finished) == APPS * JOBS_PER_APP:
                        return
                time.sleep(0.005)  # another worker holds the last jobs; look again
                continue
            start = time.monotonic()
            with queue.db.read() as s:
                app_id = s.get(Deployment, claim.deployment_id).app_id
            time.sleep(0.002)  # the job's work: long enough for claims of its app to race it
            end = time.monotonic()  # before the finish commits: the next claim may start right after
            with queue.db.session() as s:
                queue.finish(s, claim)
            with lock:
                runs[app_id].append((claim.job_id, start, end))
                finished.append(claim.job_id)

    threads = [threading.Thread(target=work, args=(queues[i % 2], f"r{i % 2}-w{i}")) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert sorted(finished) == sorted(set(finished)) and len(finished) == APPS * JOBS_PER_APP
    for app_id, app_runs in runs.items():
        in_start_order = sorted(app_runs, key=lambda r: r[1])
        assert [r[0] for r in in_start_order] == sorted(r[0] for r in app_runs), f"app {app_id} ran out of order"
        for before, after in zip(in_start_order, in_start_order[1:]):
            assert before[2] <= after[1], f"two jobs of app {app_id} ran at once: {before} {after}"


def test_event_numbers_never_collide_when_two_replicas_append_at_once(replicas):
    dep_id = seed(replicas[0], 1, 1)[0]
    logs = [EventLog(db) for db in replicas]
    errors: list[BaseException] = []

    def append(log: EventLog, n: int) -> None:
        try:
            for i in range(n):
                log.emit(dep_id, EventKind.LOG, Phase.BUILD, f"line {i}")
        except BaseException as err:  # a collision is an IntegrityError on (deployment_id, seq)
            errors.append(err)

    threads = [threading.Thread(target=append, args=(logs[i % 2], 50)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    seqs = [e.seq for e in logs[1].stored(dep_id)]
    assert seqs == list(range(1, 6 * 50 + 1))


def test_a_cancel_stored_on_one_replica_reaches_the_worker_on_the_other(replicas):
    dep_id = seed(replicas[0], 1, 1)[0]
    buses = [Bus(db.engine) for db in replicas]
    registries = [CancelRegistry(bus) for bus in buses]
    for bus in buses:
        bus.start()
    try:
        assert all(bus.wait_listening(10) for bus in buses)
        cancelled = threading.Event()
        registries[1].register(dep_id, cancelled.set)  # the worker runs on replica 2
        with replicas[0].session() as s:  # the cancel arrives at replica 1
            s.get(Deployment, dep_id).cancel_requested = True
            registries[0].publish(s, dep_id)
            assert not cancelled.is_set()  # nothing is heard before the commit
        assert cancelled.wait(2), "the other replica's worker was not told within 2 s"
    finally:
        for bus in buses:
            bus.stop()


def test_a_job_enqueued_on_one_replica_wakes_the_other_at_commit(replicas):
    seed(replicas[0], 1, 0)
    buses = [Bus(db.engine) for db in replicas]
    queues = [JobQueue(db, bus=bus) for db, bus in zip(replicas, buses)]
    for bus in buses:
        bus.start()
    try:
        assert all(bus.wait_listening(10) for bus in buses)
        woken = threading.Event()
        waiter = threading.Thread(target=lambda: (queues[1].wait(30), woken.set()))
        waiter.start()
        with replicas[0].session() as s:
            app = s.query(App).one()
            dep = Deployment(app=app, app_id=app.id, state="QUEUED", phase="QUEUED", trigger="API", created_at=utcnow())
            s.add(dep)
            s.flush()
            queues[0].enqueue(s, dep.id, app.id)
        assert woken.wait(5), "the other replica's workers slept through a new job"
        assert queues[1].claim("r2") is not None
        waiter.join(5)
    finally:
        for bus in buses:
            bus.stop()


def test_events_stored_on_one_replica_wake_watchers_on_the_other(replicas):
    dep_id = seed(replicas[0], 1, 1)[0]
    buses = [Bus(db.engine) for db in replicas]
    logs = [EventLog(db, bus=bus) for db, bus in zip(replicas, buses)]
    for bus in buses:
        bus.start()
    try:
        assert all(bus.wait_listening(10) for bus in buses)
        woken = threading.Event()
        logs[1].notifier.subscribe(dep_id, woken.set)
        logs[0].emit(dep_id, EventKind.LOG, Phase.BUILD, "from replica 1")
        assert woken.wait(5)
        assert [e.message for e in logs[1].stored(dep_id)] == ["from replica 1"]
    finally:
        for bus in buses:
            bus.stop()


def test_a_due_notification_is_claimed_by_one_sender_only(replicas):
    dep_id = seed(replicas[0], 1, 1)[0]
    with replicas[0].session() as s:
        s.add_all([Notification(deployment_id=dep_id, url=f"http://127.0.0.1:1/{i}", body="{}",
                                next_attempt_at=utcnow()) for i in range(40)])
    claimed: list[list[int]] = [[], []]
    barrier = threading.Barrier(2)

    def claim(i: int) -> None:
        barrier.wait()
        while True:
            with replicas[i].session() as s:
                rows = outbox.claim_due(s, utcnow().replace(year=2100), limit=3)
                ids = [r.id for r in rows]
            if not ids:
                return
            claimed[i] += ids

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(claimed[0] + claimed[1]) == sorted(set(claimed[0] + claimed[1]))
    assert len(claimed[0]) + len(claimed[1]) == 40


def test_cancel_requests_are_found_again_after_the_bus_missed_them(replicas):
    dep_id = seed(replicas[0], 1, 1)[0]
    with replicas[0].session() as s:
        s.get(Deployment, dep_id).cancel_requested = True
    with replicas[1].read() as s:
        assert deployments_repo.cancel_requested_among(s, [dep_id, dep_id + 1000]) == [dep_id]
