"""common.cancel.CancelToken: set once, callbacks at once, protect() as the point of no return,
and `shutdown` for a worker that leaves the deployment to resume. Ordered by events, no sleeps."""

from __future__ import annotations

import threading

from common.cancel import CancelToken


def test_cancel_runs_each_callback_once_and_reports_cancelled():
    token, calls = CancelToken(), []
    token.on_cancel(lambda: calls.append("a"))
    token.on_cancel(lambda: calls.append("b"))
    assert not token.cancelled
    assert token.cancel() is True
    assert token.cancel() is True
    assert token.cancelled and calls == ["a", "b"]


def test_a_callback_registered_after_cancel_runs_at_once():
    token, calls = CancelToken(), []
    token.cancel()
    unregister = token.on_cancel(lambda: calls.append("late"))
    assert calls == ["late"]
    unregister()


def test_unregister_keeps_a_callback_from_running():
    token, calls = CancelToken(), []
    unregister = token.on_cancel(lambda: calls.append("x"))
    unregister()
    unregister()
    token.cancel()
    assert calls == []


def test_a_failing_callback_does_not_stop_the_others():
    token, calls = CancelToken(), []

    def broken():
        raise RuntimeError("the call was already closed")

    token.on_cancel(broken)
    token.on_cancel(lambda: calls.append("after"))
    assert token.cancel() is True
    assert calls == ["after"] and token.cancelled


def test_protect_ignores_later_cancels():
    token, calls = CancelToken(), []
    token.on_cancel(lambda: calls.append("x"))
    assert token.protect() is True
    assert token.cancel() is False
    assert not token.cancelled and calls == []


def test_protect_after_cancel_tells_the_caller_to_stop():
    token = CancelToken()
    token.cancel()
    assert token.protect() is False
    assert token.cancelled


def test_wait_returns_when_another_thread_cancels():
    token = CancelToken()
    waiting = threading.Event()
    result = []

    def waiter():
        waiting.set()
        result.append(token.wait(3600))

    thread = threading.Thread(target=waiter)
    thread.start()
    waiting.wait()
    token.cancel()
    thread.join()
    assert result == [True]
    assert CancelToken().wait(0) is False


def test_shutdown_marks_a_cancel_that_leaves_the_deployment_to_resume():
    token = CancelToken()
    assert token.shutdown is False
    token.shutdown = True
    token.cancel()
    assert token.shutdown and token.cancelled


def test_both_old_names_are_this_class():
    from agent.operations import CancelToken as AgentToken
    from services.agents.port import CancelToken as PortToken
    assert AgentToken is CancelToken and PortToken is CancelToken
