"""The older-commit rule: replays and late deliveries of older pushes are recorded, never deployed."""

from __future__ import annotations

import pytest

from services.core.states import State, Trigger
from services.db.models import Job
from services.deployments.events import EventLog
from services.deployments.pushes import Push, older_than_newest, seen_decides
from services.deployments.service import DeploymentService
from services.jobs.cancels import CancelRegistry
from services.jobs.queue import JobQueue

A, B, C, D = ("a" * 40, "b" * 40, "c" * 40, "d" * 40)


def test_the_rule():
    newest = Push(7, C, B)
    assert older_than_newest(A, "", None, seen=False) == ""  # the first push
    assert older_than_newest(C, A, newest, seen=True) == ""  # the newest push again
    assert older_than_newest(D, C, newest, seen=False) == ""  # the next push of the chain
    assert older_than_newest(A, C, newest, seen=True) == ""  # a force-push back to A continues the chain
    assert "older than cccccccccccc" in older_than_newest(A, "", newest, seen=True)
    assert older_than_newest(D, A, newest, seen=False) == ""  # never seen: nothing says it is older


def test_only_a_push_off_the_chain_needs_to_know_what_was_seen():
    newest = Push(7, C, B)
    assert not seen_decides(A, "", None)  # the first push
    assert not seen_decides(C, A, newest)  # the newest push again
    assert not seen_decides(D, C, newest)  # the next push of the chain
    assert seen_decides(A, "", newest) and seen_decides(D, A, newest)  # a replay, or a late delivery


@pytest.fixture
def service(db, clock):
    return DeploymentService(db, EventLog(db), JobQueue(db, clock=clock), CancelRegistry())


def push(service, commit, before, delivery):
    return service.create("web", rebuild=True, commit_sha=commit, before_commit_sha=before, trigger=Trigger.WEBHOOK,
                          request_id=f"{delivery}:web", delivery_id=delivery, supersede_queued=True).row


def test_a_replay_of_an_older_push_with_a_fresh_delivery_id_is_superseded_not_queued(db, service, make_app):
    make_app()
    first = push(service, A, "0" * 40, "d1")
    second = push(service, B, A, "d2")
    replay = push(service, A, "0" * 40, "d3")

    assert (replay.state, replay.superseded_by_id) == (State.SUPERSEDED, second.id)
    assert "older than" in replay.failure_reason
    with db.read() as s:
        assert s.query(Job).filter_by(deployment_id=replay.id).count() == 0
        assert s.query(Job).filter_by(deployment_id=second.id, status="queued").count() == 1
    assert first.id < second.id


def test_a_delivery_that_arrives_after_the_newer_push_is_superseded(service, make_app):
    make_app()
    push(service, B, A, "d2")  # B was pushed over A, and its delivery came first
    late = push(service, A, "0" * 40, "d1")
    assert late.state == State.SUPERSEDED


def test_the_next_push_and_a_force_push_back_are_deployed(service, make_app):
    make_app()
    push(service, A, "0" * 40, "d1")
    push(service, B, A, "d2")
    back = push(service, A, B, "d3")  # git push --force of A over B
    assert back.state == State.QUEUED


def test_other_triggers_are_not_judged_by_push_order(service, make_app):
    make_app()
    push(service, A, "0" * 40, "d1")
    push(service, B, A, "d2")
    assert service.create("web", commit_sha=A, trigger=Trigger.CLI).row.state == State.QUEUED
