"""The release planner: what a deploy or a restart must do, decided apart from doing it.

Pure (no Docker, no router, no I/O): it reads what the agent observes (the app's containers
and which of them the route sends traffic to) and the release (N replicas of one deployment),
and returns steps that `agent.releaser` carries out against the engine and the router.

Invariants it keeps:
- The old containers serve until every new one has passed its gate and the switch is made;
  anything that goes wrong before the switch removes the new containers only (`undo`).
- Only a container that passed its gate (or already serves) is ever put in rotation. The
  releaser gives a container its restart policy when it passes, so after a restart "passed
  its gate" is read back from the engine: a container left by an interrupted deploy before
  its gate is never routed.
- A retried deployment (the control plane restarted mid-deploy) first drops what its earlier
  attempt started, unless that already serves.
- Exclusive volumes (`exclusive=True`): two releases never run at once, so the old containers
  stop before the new ones start (STOP_FIRST) and the app serves nothing until the switch; a
  failure before the switch removes the new containers and starts the old ones again (`undo`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Sequence

from common.phases import Phase


@dataclass(frozen=True)
class Observed:
    """One of the app's containers as the engine shows it."""

    id: str
    deployment_id: int
    running: bool
    gated: bool  # passed its health gate (Docker restarts it from then on)
    host_port: int = 0


@dataclass(frozen=True)
class Release:
    """What to run: `replicas` containers of the deployment's image."""

    deployment_id: int
    replicas: int = 1


class Action(StrEnum):
    START = "start"  # create and start new container `replica`
    GATE = "gate"  # wait until new container `replica` is healthy, then make it permanent
    SWITCH = "switch"  # put every new container in rotation, the old ones out
    DRAIN = "drain"  # let the old ones finish their in-flight requests
    STOP = "stop"  # stop `container` (its stop signal, SIGKILL after the grace period)
    REMOVE = "remove"  # remove `container`
    STOP_FIRST = "stop-first"  # stop old `container` before any new one starts (exclusive volumes)
    RESTART = "restart"  # start old `container` again: the release failed after STOP_FIRST


@dataclass(frozen=True)
class Step:
    action: Action
    phase: Phase
    container: str = ""  # an existing container, for STOP and REMOVE
    replica: int = -1  # a new container, for START and GATE


def plan_release(release: Release, observed: Sequence[Observed],
                 serving: Sequence[str], *, exclusive: bool = False) -> list[Step]:
    """Start and gate N new containers, switch to them, drain, then retire everything else;
    `exclusive`: the running old ones are stopped first."""
    if release.replicas < 1:
        raise ValueError(f"a release runs at least one container, not {release.replicas}")
    stale = [o for o in observed
             if o.deployment_id == release.deployment_id and o.id not in serving]
    retired = [o for o in observed if o not in stale]
    steps = [Step(Action.REMOVE, Phase.START, container=o.id) for o in stale]
    if exclusive:
        steps += [Step(Action.STOP_FIRST, Phase.START, container=o.id) for o in retired if o.running]
    steps += [Step(Action.START, Phase.START, replica=i) for i in range(release.replicas)]
    steps += [Step(Action.GATE, Phase.HEALTH, replica=i) for i in range(release.replicas)]
    steps += [Step(Action.SWITCH, Phase.SWITCH), Step(Action.DRAIN, Phase.STOP_OLD)]
    for old in retired:
        if old.running and not exclusive:
            steps.append(Step(Action.STOP, Phase.STOP_OLD, container=old.id))
        steps.append(Step(Action.REMOVE, Phase.STOP_OLD, container=old.id))
    return steps


def undo(started: Sequence[str], stopped_first: Sequence[str] = ()) -> list[Step]:
    """A failure or cancel before the switch: remove the new containers, then start again the
    old ones an exclusive release stopped (the volume is free for them once the new are gone)."""
    return ([Step(Action.REMOVE, Phase.START, container=cid) for cid in started]
            + [Step(Action.RESTART, Phase.START, container=cid) for cid in stopped_first])


@dataclass(frozen=True)
class Reconciliation:
    """What a restart settles for one app."""

    keep: tuple[str, ...]  # containers that stay
    route: tuple[str, ...]  # of those, the ones put (back) in rotation, ports re-read
    remove: tuple[str, ...]  # leftovers of interrupted deploys
    forget_route: bool  # nothing is left to serve the app


def plan_reconcile(observed: Sequence[Observed], serving: Sequence[str],
                   replicas: int = 1) -> Reconciliation:
    """After a restart: the routed containers keep serving; a missing one is replaced by the
    newest container that passed its gate; every other container is removed.

    `observed` is newest first. Running containers go before stopped ones (a stopped app
    stays stopped, but a running release is preferred to a stopped one), routed before
    unrouted, newest before older.
    """
    eligible = [o for o in observed if o.gated or o.id in serving]
    eligible.sort(key=lambda o: (not o.running, o.id not in serving))  # stable: newest first
    keep = eligible[:replicas]
    route = tuple(o.id for o in keep if o.running and o.host_port)
    kept = {o.id for o in keep}
    return Reconciliation(keep=tuple(o.id for o in keep), route=route,
                          remove=tuple(o.id for o in observed if o.id not in kept),
                          forget_route=not keep)
