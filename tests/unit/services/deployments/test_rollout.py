"""The rollout over an app's servers, without agents: shares, outcomes and what a failure undoes."""

from __future__ import annotations

import pytest

from services.core.errors import InvalidArgument
from services.deployments import rollout
from services.deployments.rollout import Rollout, Share, Step, Undo


def test_replicas_are_spread_over_the_servers_in_rollout_order():
    assert rollout.plan(["a", "b"], 4) == (Share("a", 2), Share("b", 2))
    assert rollout.plan(["a", "b"], 3) == (Share("a", 2), Share("b", 1))
    assert rollout.plan(["b", "a"], 3) == (Share("b", 2), Share("a", 1))
    assert rollout.plan(["a"], 3) == (Share("a", 3),)
    with pytest.raises(InvalidArgument):
        rollout.plan(["a", "b", "c"], 2)  # a server would run none


def test_a_rollout_that_succeeds_everywhere_records_each_server():
    r = Rollout(rollout.plan(["a", "b"], 3))
    assert [o["state"] for o in r.outcomes()] == ["PENDING", "PENDING"]
    for share in r.shares:
        r.succeeded(share)
    assert r.outcomes() == [
        {"server": "a", "state": "SUCCEEDED", "phase": "DONE", "reason": "", "replicas": 2},
        {"server": "b", "state": "SUCCEEDED", "phase": "DONE", "reason": "", "replicas": 1}]


def test_a_failure_stops_the_rollout_and_puts_the_servers_already_done_back_last_first():
    a, b, c, d = rollout.plan(["a", "b", "c", "d"], 4)
    r = Rollout((a, b, c, d), previous_servers=("a", "b"), has_previous=True)
    r.succeeded(a)
    r.succeeded(b)
    steps = r.fail(c, "HEALTH", "GET /health answered 500")
    # b goes back first (last done); a and b ran the previous release, so it is deployed again.
    assert steps == [Step(b, Undo.REDEPLOY), Step(a, Undo.REDEPLOY)]
    r.rolled_back(steps[0])
    r.not_rolled_back(steps[1], "server 'a' is unreachable")
    states = {o["server"]: (o["state"], o["phase"]) for o in r.outcomes()}
    assert states == {"a": ("SUCCEEDED", "DONE"), "b": ("ROLLED_BACK", "DONE"), "c": ("FAILED", "HEALTH"),
                      "d": ("SKIPPED", "")}
    reason = r.failure_reason()
    assert reason.startswith("server 'c' failed at health: GET /health answered 500")
    assert "'b' put back" in reason and "'a' could not be put back" in reason


def test_a_server_the_previous_release_did_not_run_on_is_emptied_not_given_the_old_release():
    a, b = rollout.plan(["a", "b"], 2)
    # The app moves from c to a, b: a did not run it before.
    r = Rollout((a, b), previous_servers=("c",), has_previous=True)
    r.succeeded(a)
    assert r.fail(b, "START", "image not found") == [Step(a, Undo.REMOVE)]
    # A first deployment has nothing to go back to on any server.
    first = Rollout((a, b))
    first.succeeded(a)
    assert first.fail(b, "HEALTH", "unhealthy") == [Step(a, Undo.REMOVE)]


def test_the_first_server_failing_leaves_nothing_to_undo():
    a, b = rollout.plan(["a", "b"], 2)
    r = Rollout((a, b), previous_servers=("a", "b"), has_previous=True)
    assert r.fail(a, "BUILD", "build failed: exit 1") == []
    assert [o["state"] for o in r.outcomes()] == ["FAILED", "SKIPPED"]
    assert r.failure_reason() == "server 'a' failed at build: build failed: exit 1"
