"""Following a deployment's event stream: the pure bookkeeping every client shares.

`WatchTracker` is fed DeploymentEvents (no I/O, no gRPC) and says what to show: the lines to print,
the build progress, the phase changes, the end. It drops anything already seen, so a resumed
stream never shows a line twice, and it knows the resume point (`last_seq`) and the exit code.
The CLI draws its updates in a terminal (cli/watch.py); the dashboard keeps one per deployment
across Streamlit reruns (dashboard/live.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from serversinc.v1 import deployment_pb2

from client.names import enum_value_short

State = deployment_pb2.DeploymentState
Phase = deployment_pb2.DeploymentPhase
Kind = deployment_pb2.EventKind

TERMINAL_STATES = frozenset({
    State.DEPLOYMENT_STATE_SUCCEEDED,
    State.DEPLOYMENT_STATE_FAILED,
    State.DEPLOYMENT_STATE_CANCELLED,
    State.DEPLOYMENT_STATE_SUPERSEDED,
})


def exit_code_for(state: int) -> int:
    """0 only for a deployment that is serving; every other outcome (or none yet) is a failure."""
    return 0 if state == State.DEPLOYMENT_STATE_SUCCEEDED else 1


def is_terminal(state: int) -> bool:
    return state in TERMINAL_STATES


@dataclass(frozen=True)
class ProgressInfo:
    """Build progress to show: step `current` of `total`, with the step's text."""
    current: int
    total: int
    message: str = ""


@dataclass
class Update:
    """What one new event changes on screen."""
    lines: list[str] = field(default_factory=list)  # printed above the bar, in order
    progress: ProgressInfo | None = None             # new bar position, if it moved
    phase: int | None = None                         # the new phase, if it changed
    terminal_state: int | None = None                # set by the event that ends the deployment


class WatchTracker:
    """Pure bookkeeping of one deployment's event stream (no I/O, no gRPC)."""

    def __init__(self) -> None:
        self.last_seq = 0
        self.phase = Phase.DEPLOYMENT_PHASE_UNSPECIFIED
        self.state = State.DEPLOYMENT_STATE_UNSPECIFIED
        self.progress: ProgressInfo | None = None

    @property
    def done(self) -> bool:
        return is_terminal(self.state)

    @property
    def exit_code(self) -> int:
        return exit_code_for(self.state)

    def apply(self, event) -> Update | None:
        """Account for one event; None when it was already seen (a replay after a reconnect)."""
        if event.seq and event.seq <= self.last_seq:
            return None
        if event.seq:
            self.last_seq = event.seq
        update = Update()
        if event.phase and event.phase != self.phase:
            # Any event may be the first of a new phase; show the change once, before its lines.
            self._enter_phase(event.phase, event.message if event.kind == Kind.EVENT_KIND_PHASE else "",
                              update)
        if event.kind == Kind.EVENT_KIND_LOG:
            update.lines.append(event.message)
        elif event.kind == Kind.EVENT_KIND_PROGRESS:
            info = ProgressInfo(event.step_current, event.step_total, event.message)
            if info != self.progress:
                self.progress = info
                update.progress = info
        elif event.kind == Kind.EVENT_KIND_STATE:
            if event.state and event.state != self.state:
                self.state = event.state
                if is_terminal(event.state):
                    update.terminal_state = event.state
                else:
                    text = f"state: {enum_value_short(State, event.state)}"
                    if event.message:
                        text += f" — {event.message}"
                    update.lines.append(text)
        return update

    def _enter_phase(self, phase: int, message: str, update: Update) -> None:
        self.phase = phase
        update.phase = phase
        text = f"==> {enum_value_short(Phase, phase)}"
        if message:
            text += f": {message}"
        update.lines.append(text)
