"""Deployment states, phases, triggers and event kinds: the names the database stores and the API maps.

Kept as plain string enums so domain code needs no protobuf import; each name equals the proto enum
value without its prefix (DEPLOYMENT_STATE_SUCCEEDED <-> "SUCCEEDED"). The phases are the agent's
too, so they live in `common.phases` and are handed on from here.
"""

from __future__ import annotations

from enum import StrEnum

from common.phases import PAST_SWITCH, Phase

__all__ = ["PAST_SWITCH", "EventKind", "Phase", "State", "Trigger"]


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


class Trigger(StrEnum):
    CLI = "CLI"
    DASHBOARD = "DASHBOARD"
    WEBHOOK = "WEBHOOK"
    API = "API"
    ROLLBACK = "ROLLBACK"
    # An env or secret-env change deployed as a release of its own: the serving image, no build.
    CONFIG = "CONFIG"
    # The app's set of servers changed: its serving commit deployed to the new set (services.apps.moves).
    MOVE = "MOVE"


class EventKind(StrEnum):
    LOG = "LOG"
    PHASE = "PHASE"
    PROGRESS = "PROGRESS"
    STATE = "STATE"
