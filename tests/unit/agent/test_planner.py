"""The release planner: deploy steps for N containers and restart reconciliation, no Docker."""

from __future__ import annotations

import pytest

from agent.planner import Action, Observed, Release, plan_reconcile, plan_release, undo
from common.phases import Phase


def _actions(steps):
    return [(s.action, s.container or s.replica) for s in steps]


def test_first_deploy_starts_gates_switches_and_retires_nothing():
    steps = plan_release(Release(deployment_id=1), [], serving=())
    assert _actions(steps) == [(Action.START, 0), (Action.GATE, 0), (Action.SWITCH, -1),
                               (Action.DRAIN, -1)]
    assert [s.phase for s in steps] == [Phase.START, Phase.HEALTH, Phase.SWITCH, Phase.STOP_OLD]


def test_redeploy_retires_the_old_container_only_after_the_switch_and_drain():
    old = Observed("old", deployment_id=1, running=True, gated=True, host_port=40001)
    steps = plan_release(Release(deployment_id=2), [old], serving=("old",))
    assert _actions(steps) == [(Action.START, 0), (Action.GATE, 0), (Action.SWITCH, -1),
                               (Action.DRAIN, -1), (Action.STOP, "old"), (Action.REMOVE, "old")]
    assert all(s.phase is Phase.STOP_OLD for s in steps[3:])


def test_a_stopped_old_container_is_removed_without_a_stop():
    old = Observed("old", deployment_id=1, running=False, gated=True)
    steps = plan_release(Release(deployment_id=2), [old], serving=("old",))
    assert _actions(steps)[-1] == (Action.REMOVE, "old")
    assert (Action.STOP, "old") not in _actions(steps)


def test_two_replicas_start_and_gate_both_before_one_switch():
    olds = [Observed(f"old{i}", 1, True, True, 40000 + i) for i in range(2)]
    steps = plan_release(Release(deployment_id=2, replicas=2), olds, serving=("old0", "old1"))
    actions = _actions(steps)
    assert actions[:5] == [(Action.START, 0), (Action.START, 1), (Action.GATE, 0),
                           (Action.GATE, 1), (Action.SWITCH, -1)]
    assert actions.count((Action.SWITCH, -1)) == 1
    assert actions[-4:] == [(Action.STOP, "old0"), (Action.REMOVE, "old0"),
                            (Action.STOP, "old1"), (Action.REMOVE, "old1")]


def test_a_retried_deployment_first_drops_its_earlier_attempt_unless_it_serves():
    earlier = Observed("earlier", deployment_id=5, running=True, gated=False)
    serving = Observed("serving", deployment_id=4, running=True, gated=True, host_port=1)
    steps = plan_release(Release(deployment_id=5), [earlier, serving], serving=("serving",))
    assert steps[0].action is Action.REMOVE and steps[0].container == "earlier"
    assert steps[0].phase is Phase.START
    assert [s.container for s in steps if s.action is Action.REMOVE] == ["earlier", "serving"]

    # The earlier attempt already switched: it serves until the new release replaces it.
    steps = plan_release(Release(deployment_id=5), [earlier], serving=("earlier",))
    assert _actions(steps)[0] == (Action.START, 0)
    assert _actions(steps)[-1] == (Action.REMOVE, "earlier")


def test_failure_or_cancel_before_the_switch_removes_only_the_new_containers():
    assert _actions(undo(["new0", "new1"])) == [(Action.REMOVE, "new0"), (Action.REMOVE, "new1")]
    assert undo([]) == []


def test_a_release_needs_a_container():
    with pytest.raises(ValueError):
        plan_release(Release(deployment_id=1, replicas=0), [], serving=())


def test_reconcile_keeps_the_routed_container_alive_and_routes_it_again():
    routed = Observed("routed", 2, running=True, gated=True, host_port=40002)
    older = Observed("older", 1, running=True, gated=True, host_port=40001)
    plan = plan_reconcile([routed, older], serving=("routed",))
    assert (plan.keep, plan.route, plan.remove, plan.forget_route) == \
        (("routed",), ("routed",), ("older",), False)


def test_reconcile_when_the_routed_container_is_gone_the_newest_gated_one_takes_over():
    newer = Observed("newer", 3, running=True, gated=True, host_port=40003)
    older = Observed("older", 2, running=True, gated=True, host_port=40002)
    plan = plan_reconcile([newer, older], serving=("gone",))
    assert (plan.keep, plan.route, plan.remove) == (("newer",), ("newer",), ("older",))


def test_reconcile_drops_leftovers_of_an_interrupted_deploy():
    interrupted = Observed("interrupted", 3, running=True, gated=False, host_port=40003)
    routed = Observed("routed", 2, running=True, gated=True, host_port=40002)
    plan = plan_reconcile([interrupted, routed], serving=("routed",))
    assert (plan.keep, plan.route, plan.remove) == (("routed",), ("routed",), ("interrupted",))


def test_reconcile_never_routes_a_container_that_never_passed_its_gate():
    interrupted = Observed("interrupted", 3, running=True, gated=False, host_port=40003)
    plan = plan_reconcile([interrupted], serving=())
    assert (plan.keep, plan.route, plan.remove, plan.forget_route) == \
        ((), (), ("interrupted",), True)


def test_reconcile_keeps_a_stopped_app_stopped_and_its_route():
    stopped = Observed("stopped", 2, running=False, gated=True)
    plan = plan_reconcile([stopped], serving=("stopped",))
    assert (plan.keep, plan.route, plan.remove, plan.forget_route) == \
        (("stopped",), (), (), False)


def test_reconcile_prefers_a_running_release_to_a_stopped_routed_one():
    running = Observed("running", 1, running=True, gated=True, host_port=40001)
    stopped = Observed("stopped", 2, running=False, gated=True)
    plan = plan_reconcile([stopped, running], serving=("stopped",))
    assert (plan.keep, plan.route, plan.remove) == (("running",), ("running",), ("stopped",))


def test_reconcile_with_nothing_left_forgets_the_route():
    plan = plan_reconcile([], serving=("gone",))
    assert plan.forget_route and plan.keep == plan.route == plan.remove == ()


def test_reconcile_plans_n_replicas():
    cs = [Observed(f"c{i}", 1, True, True, 40000 + i) for i in range(3)]
    plan = plan_reconcile(cs, serving=("c1", "c2"), replicas=2)
    assert (plan.keep, plan.remove) == (("c1", "c2"), ("c0",))


def test_exclusive_volumes_stop_the_old_container_before_the_new_one_starts():
    old = Observed("old", deployment_id=1, running=True, gated=True, host_port=40001)
    gone = Observed("gone", deployment_id=0, running=False, gated=True)
    steps = plan_release(Release(deployment_id=2), [old, gone], serving=("old",), exclusive=True)
    assert _actions(steps) == [(Action.STOP_FIRST, "old"), (Action.START, 0), (Action.GATE, 0),
                               (Action.SWITCH, -1), (Action.DRAIN, -1), (Action.REMOVE, "old"),
                               (Action.REMOVE, "gone")]
    assert steps[0].phase is Phase.START


def test_a_failed_exclusive_release_starts_the_old_containers_again_after_removing_the_new():
    assert _actions(undo(["new0"], ["old0"])) == [(Action.REMOVE, "new0"), (Action.RESTART, "old0")]
