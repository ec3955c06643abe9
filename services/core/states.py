"""Deployment states, phases, triggers and event kinds: the names the database stores and the API maps.

Kept as plain string enums so domain code needs no protobuf import; each name equals the proto enum
value without its prefix (DEPLOYMENT_STATE_SUCCEEDED <-> "SUCCEEDED").
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    SUPERSEDED = "SUPERSEDED"

    @property
    def terminal(self) -> bool:
        return self not in (State.QUEUED, State.RUNNING)


class Phase(StrEnum):
    QUEUED = "QUEUED"
    RESOLVE = "RESOLVE"
    BUILD = "BUILD"
    START = "START"
    HEALTH = "HEALTH"
    SWITCH = "SWITCH"
    STOP_OLD = "STOP_OLD"
    DONE = "DONE"


# Phases from which traffic goes (or is being moved) to the new container: too late to cancel.
PAST_SWITCH = frozenset({Phase.SWITCH, Phase.STOP_OLD, Phase.DONE})


class Trigger(StrEnum):
    CLI = "CLI"
    DASHBOARD = "DASHBOARD"
    WEBHOOK = "WEBHOOK"
    API = "API"
    ROLLBACK = "ROLLBACK"


class EventKind(StrEnum):
    LOG = "LOG"
    PHASE = "PHASE"
    PROGRESS = "PROGRESS"
    STATE = "STATE"
