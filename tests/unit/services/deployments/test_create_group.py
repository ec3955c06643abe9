"""CreateDeployment's group commit: creates that arrive together keep every rule of creates made alone."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from services.core.errors import AppNotFound, RequestAlreadyProcessed
from services.core.states import State, Trigger
from services.db.group_commit import GroupCommit
from services.db.models import Deployment, DeploymentEvent, Job
from services.deployments.events import EventLog
from services.deployments.service import DeploymentService
from services.jobs.cancels import CancelRegistry
from services.jobs.queue import JobQueue
from tests.unit.services.db.test_group_commit import wait_until

A, B, C = "a" * 40, "b" * 40, "c" * 40


@pytest.fixture
def service(db, clock):
    return DeploymentService(db, EventLog(db), JobQueue(db, clock=clock), CancelRegistry())


def held_group(service):
    """Makes the service's first batch wait until the test lets it go, so that the creates called
    meanwhile queue and are written together; returns (batches seen, writing, gate)."""
    batches, writing, gate = [], threading.Event(), threading.Event()
    run = service._create_group

    def gated(requests):
        batches.append([(r.app_name, r.request_id) for r in requests])
        if len(batches) == 1:
            writing.set()
            assert gate.wait(10)
        return run(requests)

    service._group = GroupCommit(gated, key=lambda r: r.app_name)
    return batches, writing, gate


def push(service, app, commit, delivery, results):
    def call():
        try:
            results[delivery] = service.create(app, rebuild=True, commit_sha=commit, trigger=Trigger.WEBHOOK,
                                               request_id=f"{delivery}:{app}", delivery_id=delivery,
                                               supersede_queued=True)
        except Exception as err:  # noqa: BLE001 - the test reads what each caller got
            results[delivery] = err
    thread = threading.Thread(target=call)
    thread.start()
    return thread


def test_creates_written_together_keep_idempotency_supersede_and_per_app_order(db, service, make_app):
    for name in ("web", "api", "docs"):
        make_app(name)
    first = service.create("web", commit_sha=A, trigger=Trigger.WEBHOOK, request_id="d0:web", delivery_id="d0",
                           supersede_queued=True)
    batches, writing, gate = held_group(service)
    results: dict = {}
    threads = [push(service, "docs", A, "d1", results)]
    assert writing.wait(10)
    for app, commit, delivery in [("web", B, "d2"), ("api", A, "d3"), ("web", A, "d4"), ("nope", A, "d5")]:
        threads.append(push(service, app, commit, delivery, results))
        wait_until(lambda: len(service._group._pending) == len(threads) - 1)
    gate.set()
    for t in threads:
        t.join(10)

    # web's second create waited for the next batch: it saw the first one committed.
    assert batches[1] == [("web", "d2:web"), ("api", "d3:api"), ("nope", "d5:nope")]
    assert isinstance(results["d5"], AppNotFound)  # its own error; the others of its batch are written
    d2, d3, d4 = results["d2"].row, results["d3"].row, results["d4"].row
    assert d2.id < d4.id and d2.state == State.QUEUED and results["d2"].queue_position == 1
    # d4 pushed A again after B: the older-push rule says it is a replay (web deployed A, then B).
    assert d4.state == State.SUPERSEDED and "older than bbbbbbbbbbbb" in d4.failure_reason
    with db.read() as s:
        rows = {d.id: d for d in s.scalars(select(Deployment))}
        jobs = {j.deployment_id: j.status for j in s.scalars(select(Job))}
        events = {}
        for e in s.scalars(select(DeploymentEvent).order_by(DeploymentEvent.seq)):
            events.setdefault(e.deployment_id, []).append((e.seq, e.state, e.message))
    for delivery, app in [("d1", "docs"), ("d2", "web"), ("d3", "api"), ("d4", "web")]:  # each caller its own row
        view = results[delivery]
        assert view.row.request_id == f"{delivery}:{app}" and view.row.app.name == app
        assert rows[view.row.id].request_id == view.row.request_id and rows[view.row.id].state == view.row.state
    # The first web deployment was superseded by d2, in the batch, with its job ended and its event.
    assert rows[first.row.id].state == State.SUPERSEDED and rows[first.row.id].superseded_by_id == d2.id
    assert jobs[first.row.id] == "done" and jobs[d2.id] == "queued" and jobs[d3.id] == "queued"
    assert d4.id not in jobs  # superseded at once: never queued
    assert events[first.row.id][-1] == (2, "SUPERSEDED", f"superseded by deployments/{d2.id} (bbbbbbbbbbbb)")
    assert events[d3.id] == [(1, "QUEUED", "queued (webhook)")]

    # A redelivery of one of them is refused with the deployment it made, however it is grouped.
    batches, writing, gate = held_group(service)
    threads = [push(service, "docs", B, "d6", results)]
    assert writing.wait(10)
    threads += [push(service, "api", A, "d3", results)]  # d3 again
    wait_until(lambda: len(service._group._pending) == 1)
    threads += [push(service, "web", C, "d7", results)]
    wait_until(lambda: len(service._group._pending) == 2)
    gate.set()
    for t in threads:
        t.join(10)
    assert isinstance(results["d3"], RequestAlreadyProcessed)
    assert results["d3"].metadata["deployment"] == f"apps/api/deployments/{d3.id}"
    assert results["d7"].row.state == State.QUEUED and results["d6"].row.state == State.QUEUED
