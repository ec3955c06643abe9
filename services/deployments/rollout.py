"""A release rolled out over an app's servers: the plan, each server's outcome, and what a failure undoes.

Pure (no agent, no database), shaped like `cli/watch.py`'s tracker: the pipeline asks it
what to do next and tells it what happened; it keeps the outcomes the deployment records.

Invariants:
- One server at a time, in the app's order (servers[0] built the image): while one server switches,
  every other one serves a whole release, old or new, never a half one.
- Each server runs its share of the replicas (`services.apps.placement.spread`, the one rule the
  API and the pipeline count containers by).
- A server that fails keeps its old release: the agent removes the new containers of a deploy
  that fails before its switch. The rollout stops there; servers not reached are SKIPPED.
- The servers already done go back to what they ran before the deployment, last done first: the
  previous release where it served, nothing where it did not (the app is removed there, volumes
  kept), so a failed rollout leaves every server as it found it. A server that cannot be put back
  stays SUCCEEDED (it serves the new release) and its reason says why it was not rolled back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from services.apps import placement


@dataclass(frozen=True)
class Share:
    """One server's part of a rollout: how many replicas of the release it runs."""

    server: str
    replicas: int


def plan(servers: Sequence[str], replicas: int) -> tuple[Share, ...]:
    """The servers in rollout order, each with its share of the replicas (4 over a, b: 2 and 2;
    3 over a, b: 2 and 1)."""
    shares = placement.spread(servers, replicas)
    return tuple(Share(server, shares[server]) for server in servers)


class Undo(StrEnum):
    REDEPLOY = "redeploy"  # deploy the previous release there again
    REMOVE = "remove"  # the app did not run there before: remove it (volumes kept)


@dataclass(frozen=True)
class Step:
    """One server to put back after a failure."""

    share: Share
    undo: Undo


class Rollout:
    """The outcomes of one rollout, in plan order, as Deployment.server_outcomes stores them."""

    def __init__(self, shares: Sequence[Share], previous_servers: Sequence[str] = (),
                 has_previous: bool = False):
        self.shares = tuple(shares)
        self.previous_servers = tuple(previous_servers)
        self.has_previous = has_previous
        self._outcomes = {s.server: placement.outcome(s.server, placement.PENDING, replicas=s.replicas)
                          for s in self.shares}
        self.done: list[Share] = []
        self.failed: tuple[str, str, str] | None = None  # (server, phase, reason)

    @property
    def several(self) -> bool:
        return len(self.shares) > 1

    def outcomes(self) -> list[dict]:
        return [dict(self._outcomes[s.server]) for s in self.shares]

    def state(self, server: str) -> str:
        return self._outcomes[server]["state"]

    def _set(self, server: str, state: str, phase: str = "", reason: str = "") -> None:
        entry = self._outcomes[server]
        entry.update(state=state, phase=phase or entry["phase"], reason=reason)

    def succeeded(self, share: Share, reason: str = "") -> None:
        self._set(share.server, placement.SUCCEEDED, "DONE", reason)
        self.done.append(share)

    def fail(self, share: Share, phase: str, reason: str) -> list[Step]:
        """`share`'s server failed at `phase`: the servers not reached are SKIPPED, and the steps
        that put the servers already done back are returned, last done first."""
        self._set(share.server, placement.FAILED, phase, reason)
        self.failed = (share.server, phase, reason)
        for s in self.shares:
            if self.state(s.server) == placement.PENDING:
                self._set(s.server, placement.SKIPPED, reason=f"not reached: server {share.server!r} failed first")
        return [Step(s, Undo.REDEPLOY if self.has_previous and s.server in self.previous_servers else Undo.REMOVE)
                for s in reversed(self.done)]

    def rolled_back(self, step: Step) -> None:
        how = ("back on the previous release" if step.undo is Undo.REDEPLOY
               else "the app was removed: it did not run here before this deployment")
        self._set(step.share.server, placement.ROLLED_BACK, reason=how)

    def not_rolled_back(self, step: Step, why: str) -> None:
        self._set(step.share.server, placement.SUCCEEDED, reason=f"still serves this release: putting it back failed: {why}")

    def failure_reason(self) -> str:
        """The deployment's failure reason: which server, why, and where the others are now."""
        server, phase, reason = self.failed
        text = f"server {server!r} failed at {phase.lower()}: {reason}"
        back = [s.server for s in self.shares if self.state(s.server) == placement.ROLLED_BACK]
        stuck = [s.server for s in self.done if self.state(s.server) == placement.SUCCEEDED]
        if back:
            text += f"; {_names(back)} put back as before this deployment"
        if stuck:
            text += f"; {_names(stuck)} could not be put back and serve{'s' if len(stuck) == 1 else ''} this release"
        return text


def _names(servers: Sequence[str]) -> str:
    return ", ".join(repr(s) for s in servers)
