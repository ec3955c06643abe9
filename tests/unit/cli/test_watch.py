"""The CLI's live deployment renderer and driver: no line printed twice across reconnects, the right
exit code per outcome.

The stream is a plain Python fake (an iterator that raises an RpcError), not a gRPC server.
"""

import io

import grpc
import pytest
from rich.console import Console

from serversinc.v1 import deployment_pb2 as d
from cli import watch
from cli.watch import WatchRenderer, follow_deployment
from tests.unit.client.deployment_events import NAME, script

class Unavailable(grpc.RpcError):
    def code(self):
        return grpc.StatusCode.UNAVAILABLE

    def details(self):
        return "connection reset"


class FakeStub:
    """Serves WatchDeployment from a fixed event list, honouring after_seq; breaks after given seqs."""

    def __init__(self, events, break_after=(), final_state=d.DEPLOYMENT_STATE_SUCCEEDED, end_early=False):
        self.events = events
        self.break_after = list(break_after)
        self.final_state = final_state
        self.end_early = end_early
        self.requests = []

    def WatchDeployment(self, req):
        self.requests.append(req.after_seq)
        brk = self.break_after.pop(0) if self.break_after else None

        def gen():
            for e in self.events:
                if e.seq <= req.after_seq:
                    continue
                yield e
                if brk is not None and e.seq >= brk:
                    if self.end_early:
                        return
                    raise Unavailable()
        return gen()

    def GetDeployment(self, req):
        return d.Deployment(name=req.name, id=5, app="web", state=self.final_state,
                            commit_sha="abc1234def", image="web:abc1234def", build_seconds=12.5,
                            deploy_seconds=3.25, url="http://web.localhost",
                            failure_phase=(d.DEPLOYMENT_PHASE_HEALTH
                                           if self.final_state == d.DEPLOYMENT_STATE_FAILED else 0),
                            failure_reason=("no answer" if self.final_state == d.DEPLOYMENT_STATE_FAILED else ""))


def run(stub):
    buf = io.StringIO()
    console = Console(file=buf, width=200, emoji=False, highlight=False)  # not a TTY: plain lines
    notices = []
    with WatchRenderer(console) as r:
        final, code = follow_deployment(stub, NAME, r, sleep=lambda s: None, notice=notices.append)
    return buf.getvalue().splitlines(), code, notices


@pytest.mark.parametrize("state,code", [
    (d.DEPLOYMENT_STATE_SUCCEEDED, 0),
    (d.DEPLOYMENT_STATE_FAILED, 1),
    (d.DEPLOYMENT_STATE_CANCELLED, 1),
    (d.DEPLOYMENT_STATE_SUPERSEDED, 1),
])
def test_exit_code_per_terminal_state(state, code):
    lines, rc, _ = run(FakeStub(script(state), final_state=state))
    assert rc == code


def test_resume_after_unavailable_never_duplicates():
    clean, clean_rc, _ = run(FakeStub(script()))
    stub = FakeStub(script(), break_after=[4, 7, 9])
    lines, rc, notices = run(stub)
    assert rc == clean_rc == 0
    assert lines == clean
    assert stub.requests == [0, 4, 7, 9]
    assert len(notices) == 3
    assert len(lines) == len(set(lines)) or lines.count("Collecting flask") == 1
    assert lines.count("Collecting flask") == 1
    # Plain output has no bar: progress events print nothing, the build's own lines carry it.
    assert not any(line.startswith("build step") for line in lines)
    assert "Step 1/3 : FROM python:3.11 [cached]" in lines
    summary = "\n".join(lines[lines.index("deployments/5 succeeded"):])
    for part in ("abc1234", "web:abc1234def", "12.5s", "3.2s", "http://web.localhost"):
        assert part in summary


def test_resume_when_server_replays_overlapping_events():
    class Overlapping(FakeStub):
        def WatchDeployment(self, req):
            # A server that ignores after_seq after a reconnect: the tracker must still dedupe.
            return super().WatchDeployment(type(req)(name=req.name, after_seq=0))
    clean, _, _ = run(FakeStub(script()))
    lines, rc, _ = run(Overlapping(script(), break_after=[6]))
    assert lines == clean and rc == 0


def test_stream_ending_early_is_resumed():
    stub = FakeStub(script(), break_after=[8], end_early=True)
    lines, rc, notices = run(stub)
    assert rc == 0 and stub.requests == [0, 8] and len(notices) == 1
    assert lines.count("Collecting flask") == 1


def test_stream_without_terminal_event_stops_when_deployment_is_over():
    # The stored events lack the terminal STATE event; GetDeployment says FAILED: no endless loop.
    stub = FakeStub(script()[:-1], final_state=d.DEPLOYMENT_STATE_FAILED)
    lines, rc, notices = run(stub)
    assert rc == 1 and stub.requests == [0, 11] and len(notices) == 1
    assert lines.count("Collecting flask") == 1


def test_gives_up_after_retries():
    class Dead(FakeStub):
        def WatchDeployment(self, req):
            self.requests.append(req.after_seq)
            raise Unavailable()
    stub = Dead(script())
    with pytest.raises(grpc.RpcError) as e:
        run(stub)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert len(stub.requests) == len(watch.RECONNECT_BACKOFF) + 1


def test_other_errors_are_not_retried():
    class NotFound(FakeStub):
        def WatchDeployment(self, req):
            self.requests.append(req.after_seq)

            class E(grpc.RpcError):
                def code(self):
                    return grpc.StatusCode.NOT_FOUND
            raise E()
    stub = NotFound(script())
    with pytest.raises(grpc.RpcError):
        run(stub)
    assert stub.requests == [0]


def test_failure_summary():
    lines, rc, _ = run(FakeStub(script(d.DEPLOYMENT_STATE_FAILED), final_state=d.DEPLOYMENT_STATE_FAILED))
    assert rc == 1
    text = "\n".join(lines)
    assert "deployments/5 failed" in text and "failed in health" in text and "no answer" in text
