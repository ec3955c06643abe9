"""The phase vocabulary of a deployment, shared by the control plane (which records it) and the
agent (whose Deploy stream reports it). Each name equals the proto enum value
`serversinc.v1.DeploymentPhase` without its `DEPLOYMENT_PHASE_` prefix."""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    QUEUED = "QUEUED"
    RESOLVE = "RESOLVE"
    BUILD = "BUILD"
    # The app's release command (e.g. migrations), in a container of the new image, before START.
    RELEASE_COMMAND = "RELEASE_COMMAND"
    START = "START"
    HEALTH = "HEALTH"
    SWITCH = "SWITCH"
    STOP_OLD = "STOP_OLD"
    DONE = "DONE"


# From here on traffic goes (or is being moved) to the new container: too late to cancel.
PAST_SWITCH = frozenset({Phase.SWITCH, Phase.STOP_OLD, Phase.DONE})
