"""The shared watch tracker: replays dropped, phases shown once, the exit code per outcome (no I/O)."""

import pytest

from serversinc.v1 import deployment_pb2 as d
from client.watch import ProgressInfo, WatchTracker, exit_code_for
from tests.unit.client.deployment_events import ev, script


def test_tracker_drops_replayed_events():
    t = WatchTracker()
    events = script()
    first = [t.apply(e) for e in events[:7]]
    assert all(u is not None for u in first) and t.last_seq == 7
    # A resumed stream that (wrongly or by overlap) replays old events prints nothing for them.
    assert all(t.apply(e) is None for e in events[:7])
    assert t.apply(events[7]).progress == ProgressInfo(2, 3, "RUN pip install")
    assert not t.done


def test_tracker_lines_and_phases():
    t = WatchTracker()
    lines, progress = [], []
    for e in script():
        u = t.apply(e)
        lines += u.lines
        if u.progress:
            progress.append((u.progress.current, u.progress.total))
    assert "==> resolve: resolving main" in lines
    assert "==> build: building" in lines
    assert "Step 1/3 : FROM python:3.11 [cached]" in lines
    assert lines.count("==> build: building") == 1
    assert progress == [(1, 3), (2, 3), (3, 3)]
    assert t.done and t.exit_code == 0 and t.last_seq == 12


@pytest.mark.parametrize("state,code", [
    (d.DEPLOYMENT_STATE_SUCCEEDED, 0),
    (d.DEPLOYMENT_STATE_FAILED, 1),
    (d.DEPLOYMENT_STATE_CANCELLED, 1),
    (d.DEPLOYMENT_STATE_SUPERSEDED, 1),
])
def test_exit_code_per_terminal_state(state, code):
    assert exit_code_for(state) == code
    t = WatchTracker()
    for e in script(state):
        t.apply(e)
    assert t.done and t.exit_code == code


def test_non_terminal_states_are_not_success():
    assert exit_code_for(d.DEPLOYMENT_STATE_RUNNING) == 1
    assert exit_code_for(d.DEPLOYMENT_STATE_QUEUED) == 1
    assert not WatchTracker().done


def test_a_non_terminal_state_is_a_line_and_the_terminal_one_ends_it():
    t = WatchTracker()
    u = t.apply(ev(1, d.EVENT_KIND_STATE, d.DEPLOYMENT_PHASE_QUEUED, "2 ahead", state=d.DEPLOYMENT_STATE_QUEUED))
    assert u.lines == ["==> queued", "state: queued — 2 ahead"] and u.terminal_state is None
    u = t.apply(ev(2, d.EVENT_KIND_STATE, d.DEPLOYMENT_PHASE_DONE, state=d.DEPLOYMENT_STATE_CANCELLED))
    assert u.terminal_state == d.DEPLOYMENT_STATE_CANCELLED and u.lines == ["==> done"]
    assert t.done and t.exit_code == 1


def test_unchanged_progress_is_not_an_update():
    t = WatchTracker()
    first = t.apply(ev(1, d.EVENT_KIND_PROGRESS, d.DEPLOYMENT_PHASE_BUILD, "RUN x", cur=1, total=2))
    again = t.apply(ev(2, d.EVENT_KIND_PROGRESS, d.DEPLOYMENT_PHASE_BUILD, "RUN x", cur=1, total=2))
    assert first.progress == ProgressInfo(1, 2, "RUN x") and again.progress is None
