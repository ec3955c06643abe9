"""The dashboard's pure parts: the update mask, the phase stepper, and resuming an event feed."""

from __future__ import annotations

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from serversinc.v1 import app_pb2, deployment_pb2 as d

from dashboard import forms, live, ui


def test_changed_fields_names_exactly_what_differs():
    current = app_pb2.App(name="a", repo_url="/r", branch="main", port=8080, env={"A": "1"})
    same = forms.app_from_values("a", {"repo_url": "/r", "branch": "main", "port": 8080, "env": "A=1"})
    assert forms.changed_fields(current, same) == []
    edited = forms.app_from_values("a", {"repo_url": "/r", "branch": "dev", "port": 8080, "env": "A=1\nB=2"})
    assert forms.changed_fields(current, edited) == ["branch", "env"]


def test_parse_env_reports_the_bad_line():
    assert forms.parse_env("# comment\nA=1\n\nB=x=y") == {"A": "1", "B": "x=y"}
    with pytest.raises(forms.FormError, match="line 2"):
        forms.parse_env("A=1\nnope")


def _ts(seconds: float) -> Timestamp:
    t = Timestamp()
    t.FromNanoseconds(int(seconds * 1e9))
    return t


def test_steps_for_a_failed_health_check():
    dep = d.Deployment(state=d.DEPLOYMENT_STATE_FAILED, phase=d.DEPLOYMENT_PHASE_HEALTH,
                       failure_phase=d.DEPLOYMENT_PHASE_HEALTH,
                       phase_timings=[d.PhaseTiming(phase=d.DEPLOYMENT_PHASE_BUILD, start_time=_ts(10),
                                                    end_time=_ts(12.5))])
    steps = ui.steps(dep)
    assert [s.status for s in steps] == ["done", "done", "done", "done", "failed", "skipped", "skipped", "skipped"]
    assert steps[2].duration == "2.5 s"
    html = ui.stepper_html(steps)
    assert "sx-failed" in html and "health" in html


def test_steps_while_running_and_after_success():
    running = d.Deployment(state=d.DEPLOYMENT_STATE_RUNNING, phase=d.DEPLOYMENT_PHASE_BUILD)
    assert [s.status for s in ui.steps(running)][:4] == ["done", "done", "current", "pending"]
    ok = d.Deployment(state=d.DEPLOYMENT_STATE_SUCCEEDED, phase=d.DEPLOYMENT_PHASE_DONE, build_skipped=True)
    assert [s.status for s in ui.steps(ok)] == ["done", "done", "skipped"] + ["done"] * 5


class SlicedClient:
    """Serves a deployment's events in slices the way short-deadline WatchDeployment calls do,
    replaying some already-sent events each time (as a server resuming at an older seq might)."""

    def __init__(self, events, slice_size=3, replay=2):
        self.events, self.slice_size, self.replay = events, slice_size, replay
        self.calls = []

    def watch(self, name, after_seq, timeout):
        self.calls.append(after_seq)
        start = max(0, after_seq - self.replay)
        yield from [e for e in self.events if e.seq > start][: self.slice_size + self.replay]


def test_feed_resumes_without_duplicating_or_dropping_lines():
    name = "deployments/1"
    events = [d.DeploymentEvent(deployment=name, seq=i, kind=d.EVENT_KIND_LOG, phase=d.DEPLOYMENT_PHASE_BUILD,
                                message=f"Step {i}/9") for i in range(1, 10)]
    events.append(d.DeploymentEvent(deployment=name, seq=10, kind=d.EVENT_KIND_STATE,
                                    state=d.DEPLOYMENT_STATE_SUCCEEDED))
    client = SlicedClient(events)
    feed = live.feed_for({}, name)
    while not feed.done:
        feed.pull(client)
        assert len(client.calls) < 20
    logs = [line for line in feed.lines if line.startswith("Step ")]
    assert logs == [f"Step {i}/9" for i in range(1, 10)]
    assert feed.last_seq == 10
    assert client.calls[0] == 0 and client.calls == sorted(client.calls)


def test_a_failed_deployment_is_flagged_beside_the_serving_release_only():
    beside = app_pb2.App(status=app_pb2.APP_STATUS_RUNNING, current_deployment="apps/web/deployments/3",
                         latest_deployment="apps/web/deployments/4", latest_deployment_failed=True)
    assert ui.failed_beside(beside) == "Deployment #4 failed; #3 still serves"
    nothing_serves = app_pb2.App(status=app_pb2.APP_STATUS_FAILED, latest_deployment="apps/web/deployments/1",
                                 latest_deployment_failed=True)
    assert ui.failed_beside(nothing_serves) == ""
    assert ui.failed_beside(app_pb2.App(current_deployment="apps/web/deployments/3",
                                        latest_deployment="apps/web/deployments/3")) == ""


def test_down_and_degraded_have_their_own_badge_colours():
    assert ui.app_status(app_pb2.App(status=app_pb2.APP_STATUS_DOWN)) == "down"
    assert ui.badge_md("down") == ":red-badge[down]"
    assert ui.badge_md("degraded") == ":orange-badge[degraded]"


def test_the_health_note_says_why_and_whether_it_is_stale():
    assert ui.health_note(app_pb2.App()) == ""
    stale = app_pb2.App(health_detail="container web-1 is exited", health_stale=True, health_observe_time=_ts(0))
    assert ui.health_note(stale).startswith("container web-1 is exited · server not answering; last seen ")
