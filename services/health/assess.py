"""Judging an app's serving release from its containers as the agent reports them: pure rules.

A container counts as healthy while Docker runs it and the router's checks do not fail it (an
agent that does not report router health is judged by Docker's state alone). The release is
DOWN when none of its containers is healthy, DEGRADED when some are not, or when it restarted
within FLAP_WINDOW (with one container that is the only sign of a crash loop the router may miss
between checks), and HEALTHY otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from services.agents.port import ContainerView

# A restart seen less than this long ago keeps an otherwise healthy release DEGRADED.
FLAP_WINDOW = timedelta(seconds=60)


class Health(StrEnum):
    HEALTHY = "HEALTHY"
    DEGRADED = "DEGRADED"
    DOWN = "DOWN"


class Announcement(StrEnum):
    """What a change of health announces; only going down and coming back are worth a message."""

    DOWN = "app.down"
    RECOVERED = "app.recovered"


@dataclass(frozen=True)
class Previous:
    """What was stored from the last observation of the app."""

    deployment_id: int
    health: Health
    restart_count: int
    restarted_at: datetime | None


@dataclass(frozen=True)
class Observation:
    deployment_id: int
    health: Health
    detail: str
    restart_count: int
    restarted_at: datetime | None


def _fault(c: ContainerView) -> str:
    """Why the container takes no traffic, or "" when it does."""
    if c.state != "running":
        return f"container {c.name or c.id[:12]} is {c.state or 'gone'}"
    if c.health == "UNHEALTHY":
        return f"container {c.name or c.id[:12]} fails its health check" + (f" ({c.health_detail})" if c.health_detail else "")
    return ""


def observe(deployment_id: int, containers: list[ContainerView], previous: Previous | None,
            now: datetime) -> Observation:
    """The serving release's health, from the agent's containers (of any app) and the last record."""
    release = [c for c in containers if c.deployment_id == deployment_id]
    restarts = sum(c.restart_count for c in release)
    restarted_at = None
    if previous is not None and previous.deployment_id == deployment_id:
        restarted_at = now if restarts > previous.restart_count else previous.restarted_at
    if not release:
        return Observation(deployment_id, Health.DOWN, "no container of the serving release on its server", 0, None)
    faults = [f for f in map(_fault, release) if f]
    if len(faults) == len(release):
        return Observation(deployment_id, Health.DOWN, "; ".join(faults), restarts, restarted_at)
    if faults:
        detail = f"{len(faults)} of {len(release)} containers unhealthy: " + "; ".join(faults)
        return Observation(deployment_id, Health.DEGRADED, detail, restarts, restarted_at)
    if restarted_at is not None and now - restarted_at < FLAP_WINDOW:
        detail = f"restarted by Docker (restart count {restarts}) at {restarted_at:%H:%M:%S} UTC"
        return Observation(deployment_id, Health.DEGRADED, detail, restarts, restarted_at)
    return Observation(deployment_id, Health.HEALTHY, "", restarts, restarted_at)


def announcement(before: Health | None, after: Health) -> Announcement | None:
    """Once per transition: into DOWN (from anything, a first sight included), and out of it."""
    if after == Health.DOWN and before != Health.DOWN:
        return Announcement.DOWN
    if before == Health.DOWN and after != Health.DOWN:
        return Announcement.RECOVERED
    return None
