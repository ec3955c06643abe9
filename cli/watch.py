"""Following a deployment live in a terminal: the rendering and the stream driver.

Split in three so the part that matters most is testable without gRPC or a terminal:
- `client.watch.WatchTracker` (shared with the dashboard) is the pure bookkeeping: what to print,
  what progress to show, the resume point and the exit code.
- `WatchRenderer` draws a tracker's updates with rich: a progress bar on a terminal, plain lines otherwise.
- `follow_deployment` drives a WatchDeployment stream, reconnecting with after_seq on UNAVAILABLE
  (with several API replicas listed, the new stream goes to whichever answers: client.addresses).
"""

from __future__ import annotations

import sys
import time
from typing import Callable

import grpc
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from serversinc.v1 import deployment_service_pb2

from client.names import enum_value_short, short_sha
from client.placement import outcome_words
from client.watch import Phase, State, Update, WatchTracker, exit_code_for, is_terminal

# Backoff between reconnect attempts after the stream breaks; its length is the number of retries.
RECONNECT_BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0)


def summary_lines(deployment=None, state: int | None = None) -> list[str]:
    """The closing summary of a finished deployment (from GetDeployment; `state` alone if that failed)."""
    if deployment is None:
        return [f"deployment {enum_value_short(State, state or 0) or 'ended'}"]
    d = deployment
    lines = [f"{d.name} {enum_value_short(State, d.state)}"]
    if d.commit_sha:
        commit = short_sha(d.commit_sha)
        lines.append(f"  commit   {commit} {d.commit_message}".rstrip())
    if d.image:
        lines.append(f"  image    {d.image}")
    if d.build_skipped:
        lines.append("  build    skipped (image already built)")
    elif d.build_seconds:
        lines.append(f"  build    {d.build_seconds:.1f}s")
    if d.deploy_seconds:
        lines.append(f"  deploy   {d.deploy_seconds:.1f}s")
    if d.unserved_seconds:
        lines.append(f"  served nothing for {d.unserved_seconds:.1f}s (exclusive volumes)")
    if d.url:
        lines.append(f"  url      {d.url}")
    if d.failure_phase:
        lines.append(f"  failed in {enum_value_short(Phase, d.failure_phase)}")
    if d.failure_reason:
        lines.append(f"  reason   {d.failure_reason}")
    if d.superseded_by:
        lines.append(f"  superseded by {d.superseded_by}")
    for o in d.server_outcomes:
        lines.append(f"  server   {o.server}: {outcome_words(o)}")
    return lines


class WatchRenderer:
    """Draws tracker updates: a live bar on a terminal; on a pipe or file, plain lines only."""

    def __init__(self, console: Console):
        self.console = console
        self.live = console.is_terminal
        self._progress: Progress | None = None
        self._task = None

    def __enter__(self) -> "WatchRenderer":
        if self.live:
            self._progress = Progress(
                TextColumn("[bold]build[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[step]}", markup=False),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._task = self._progress.add_task("build", total=None, visible=False, step="")
            self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def print_line(self, text: str, style: str | None = None) -> None:
        # Text, not str: build output is full of [brackets] that must not be read as rich markup.
        self.console.print(Text(text, style=style or ""), soft_wrap=True)

    def render(self, update: Update) -> None:
        for line in update.lines:
            self.print_line(line, "bold" if line.startswith("==> ") else None)
        if update.phase is not None and update.phase != Phase.DEPLOYMENT_PHASE_BUILD and self._progress:
            self._progress.update(self._task, visible=False)
        if update.progress is not None:
            p = update.progress
            if self._progress is not None:
                self._progress.update(
                    self._task, visible=True, total=p.total or None, completed=p.current,
                    step=(p.message or "")[:60],
                )
            # Without a terminal there is no bar; the build's own "Step i/n" lines already show
            # the progress, so nothing more is printed.

    def summary(self, lines: list[str], ok: bool) -> None:
        if self._progress is not None:
            self._progress.update(self._task, visible=False)
        for i, line in enumerate(lines):
            self.print_line(line, ("bold green" if ok else "bold red") if i == 0 else None)


def follow_deployment(
    stub,
    name: str,
    renderer: WatchRenderer,
    *,
    backoff: tuple[float, ...] = RECONNECT_BACKOFF,
    sleep: Callable[[float], None] = time.sleep,
    notice: Callable[[str], None] | None = None,
):
    """Watch `name` until it is terminal; returns (final Deployment or None, exit code).

    `stub` needs WatchDeployment and GetDeployment (a DeploymentServiceStub, or a fake in tests).
    A stream that breaks with UNAVAILABLE, or ends before the terminal state, is resumed with
    after_seq = the last seq seen, a few times with backoff; the attempts reset once events flow again.
    """
    notice = notice or (lambda msg: print(msg, file=sys.stderr, flush=True))
    tracker = WatchTracker()
    attempt = 0
    while True:
        seen_before = tracker.last_seq
        try:
            stream = stub.WatchDeployment(
                deployment_service_pb2.WatchDeploymentRequest(name=name, after_seq=tracker.last_seq)
            )
            for event in stream:
                update = tracker.apply(event)
                if update is not None:
                    renderer.render(update)
                if tracker.done:
                    # Don't wait for the server to close a stream whose story is over.
                    getattr(stream, "cancel", lambda: None)()
                    break
            if tracker.done:
                break
            # The server ended the stream before the terminal state event. Resume to get the rest,
            # unless a stream already brought nothing new and the deployment is over anyway (a server
            # that never sends the terminal event must not make us loop).
            if tracker.last_seq == seen_before:
                current = stub.GetDeployment(deployment_service_pb2.GetDeploymentRequest(name=name))
                if is_terminal(current.state):
                    tracker.state = current.state
                    break
            reason = "stream ended early"
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            reason = "connection lost"
        if tracker.last_seq > seen_before:
            attempt = 0
        if attempt >= len(backoff):
            raise _GaveUp(f"{reason}; gave up after {attempt} reconnect attempts")
        delay = backoff[attempt]
        attempt += 1
        notice(f"{reason}, reconnecting in {delay:g}s (after event {tracker.last_seq})…")
        sleep(delay)

    try:
        final = stub.GetDeployment(deployment_service_pb2.GetDeploymentRequest(name=name))
    except grpc.RpcError:
        final = None
    state = final.state if final is not None and is_terminal(final.state) else tracker.state
    code = exit_code_for(state)
    renderer.summary(summary_lines(final, state), ok=code == 0)
    return final, code


class _GaveUp(grpc.RpcError):
    """Reconnecting failed: surfaces like the UNAVAILABLE it came from, with a clearer message."""

    def __init__(self, message: str):
        super().__init__(message)
        self._message = message

    def code(self):
        return grpc.StatusCode.UNAVAILABLE

    def details(self):
        return self._message
