"""Judging an app's serving release from its containers as the agent reports them: pure rules.

A container counts as healthy while Docker runs it and the router's checks do not fail it (an
agent that does not report router health is judged by Docker's state alone). The release is
DOWN when none of its containers is healthy, DEGRADED when some are not, or when it restarted
within FLAP_WINDOW (with one container that is the only sign of a crash loop the router may miss
between checks), and HEALTHY otherwise.

OOM kills (the agent counts them from Docker's events: agent.oom_watch) keep a release DEGRADED
for OOM_WINDOW after the last one, its detail saying how often: a kill of a child process leaves
the container running and its checks green, so nothing else would show it. A kill newer than the
last one announced is announced once ("app.oom"), if it is not older than OOM_WINDOW.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from common.runtime_rules import memory_text
from services.agents.port import ContainerView

# A restart seen less than this long ago keeps an otherwise healthy release DEGRADED.
FLAP_WINDOW = timedelta(seconds=60)
# An OOM kill less than this long ago (the agent's clock) keeps it DEGRADED, and is announced.
OOM_WINDOW = timedelta(minutes=10)
# Kill times this close are one kill: a restarted agent that no longer holds the event dates the
# kill by the container's exit, a few milliseconds after the event it announced before.
SAME_OOM = timedelta(seconds=2)


class Health(StrEnum):
    HEALTHY = "HEALTHY"
    DEGRADED = "DEGRADED"
    DOWN = "DOWN"


class Announcement(StrEnum):
    """What a change of health announces; only going down and coming back are worth a message."""

    DOWN = "app.down"
    RECOVERED = "app.recovered"
    OOM = "app.oom"


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
    # OOM kills of the release's containers, and the time of the last one (agent.oom_watch).
    oom_kills: int = 0
    last_oom: datetime | None = None


def oom_detail(kills: int, last: datetime | None, memory_limit: int = 0) -> str:
    """ "OOM-killed 2 time(s) since the release started, last at 2026-12-01 20:41:07 UTC (memory
    limit 32 MiB)"; "" for none."""
    if not kills:
        return ""
    when = f", last at {last:%Y-%m-%d %H:%M:%S} UTC" if last else ""
    limit = f" (memory limit {memory_text(memory_limit)})" if memory_limit else " (no memory limit)"
    return f"OOM-killed {kills} time(s) since the release started{when}{limit}"


def _recent(last: datetime | None, now: datetime) -> bool:
    return last is not None and now - last < OOM_WINDOW


def _with_oom(obs: Observation, kills: int, last: datetime | None, now: datetime,
              memory_limit: int) -> Observation:
    """The observation with the release's OOM kills: in the detail when there were any, and
    DEGRADED instead of HEALTHY while the last one is recent."""
    text = oom_detail(kills, last, memory_limit)
    if not text:
        return obs
    health = Health.DEGRADED if obs.health == Health.HEALTHY and _recent(last, now) else obs.health
    detail = f"{obs.detail}; {text}" if obs.detail else text
    return replace(obs, health=health, detail=detail, oom_kills=kills, last_oom=last)


def oom_news(obs: Observation, announced: datetime | None, now: datetime) -> bool:
    """Whether the observation's last OOM kill is one to announce: newer than the last announced
    one (both the agent's times, so clocks never compare across machines) and recent."""
    return _recent(obs.last_oom, now) and (announced is None or obs.last_oom - announced >= SAME_OOM)


def _fault(c: ContainerView) -> str:
    """Why the container takes no traffic, or "" when it does."""
    if c.state != "running":
        return f"container {c.name or c.id[:12]} is {c.state or 'gone'}"
    if c.health == "UNHEALTHY":
        return f"container {c.name or c.id[:12]} fails its health check" + (f" ({c.health_detail})" if c.health_detail else "")
    return ""


def observe(deployment_id: int, containers: list[ContainerView], previous: Previous | None,
            now: datetime, memory_limit: int = 0) -> Observation:
    """The serving release's health on one server, from the agent's containers (of any app) and
    the last record; `memory_limit` (the app's, bytes) is named in an OOM detail."""
    release = [c for c in containers if c.deployment_id == deployment_id]
    obs = _observe(deployment_id, release, previous, now)
    oomed = [c.last_oom for c in release if c.oom_kills and c.last_oom]
    return _with_oom(obs, sum(c.oom_kills for c in release), max(oomed) if oomed else None, now,
                     memory_limit)


@dataclass(frozen=True)
class Watch:
    """One server of an app, as the monitor judges it.

    `deployment_id` is the release the server last succeeded with (None: only the running
    rollout has reached it, e.g. a server the app is moving to), `replicas` how many of its
    containers should run there (0: not recorded, every container found counts). While a
    deployment of the app runs, `rollout_id` / `rollout_replicas` are its own: a rollout switches
    one server at a time, so the server may serve either release and is judged by the one that
    serves there (`judged`), never alarmed by the other's containers starting or stopping.
    """

    server: str
    deployment_id: int | None
    replicas: int = 0
    rollout_id: int | None = None
    rollout_replicas: int = 0


def judged(watch: Watch, containers: list[ContainerView]) -> tuple[int, int] | None:
    """(deployment id, replicas expected) the server is judged by: the rollout's release once a
    container of it serves there, else the one the server last succeeded with; None for a
    server only the rollout names that it has not switched yet (nothing of the app serves there)."""
    if watch.rollout_id is not None and any(c.deployment_id == watch.rollout_id and c.serving for c in containers):
        return watch.rollout_id, watch.rollout_replicas
    if watch.deployment_id is None:
        return None
    return watch.deployment_id, watch.replicas


def _server_verdict(release: list[ContainerView], expected: int) -> tuple[Health, str]:
    """One server's replicas of the release it serves: DOWN when none takes traffic, DEGRADED
    when some fail or are missing (fewer than `expected`), HEALTHY otherwise; and why."""
    if not release:
        return Health.DOWN, "no container of the serving release on its server"
    faults = [f for f in map(_fault, release) if f]
    if len(faults) == len(release):
        return Health.DOWN, "; ".join(faults)
    if faults:
        return Health.DEGRADED, f"{len(faults)} of {len(release)} containers unhealthy: " + "; ".join(faults)
    if expected and len(release) < expected:
        missing = expected - len(release)
        return Health.DEGRADED, f"{missing} of {expected} replicas missing"
    return Health.HEALTHY, ""


_ORDER = {Health.HEALTHY: 0, Health.DEGRADED: 1, Health.DOWN: 2}


def observe_app(deployment_id: int, watches: list[Watch], containers: dict[str, list[ContainerView]],
                previous: Previous | None, now: datetime, memory_limit: int = 0,
                silent: frozenset[str] | set[str] = frozenset()) -> Observation:
    """The app's health over its servers (in rollout order): HEALTHY when every judged server's
    replicas run, DOWN when no server serves it, DEGRADED in between (a server down, a replica
    failing or missing, a restart within FLAP_WINDOW, a recent OOM kill). `containers` are each
    server's containers of the app; `silent` the servers whose agent did not answer.

    A silent server is not judged, and cannot prove anything: an observation with one is never
    better than `previous`, and does not go into DOWN (the silent server may serve). The stored
    deployment is the serving one (`deployment_id`) throughout a rollout: the status view reads
    the record against it. Restart counts are summed over every judged container."""
    verdicts: list[tuple[str, Health, str]] = []
    release: list[ContainerView] = []
    for w in watches:
        if w.server in silent:
            continue
        here = containers.get(w.server, [])
        which = judged(w, here)
        if which is None:
            continue
        mine = [c for c in here if c.deployment_id == which[0]]
        release += mine
        verdicts.append((w.server, *_server_verdict(mine, which[1])))
    restarts = sum(c.restart_count for c in release)
    restarted_at = None
    if previous is not None and previous.deployment_id == deployment_id:
        restarted_at = now if restarts > previous.restart_count else previous.restarted_at
    several = len(watches) > 1
    details = [f"server {name!r}: {text}" if several else text for name, _, text in verdicts if text]
    healths = [h for _, h, _ in verdicts]
    if not healths and not silent:
        health = Health.DOWN
        details = ["no server runs the serving release"]
    elif healths and all(h == Health.DOWN for h in healths) and not silent:
        health = Health.DOWN
    elif any(h != Health.HEALTHY for h in healths):
        health = Health.DEGRADED
    elif restarted_at is not None and now - restarted_at < FLAP_WINDOW:
        health = Health.DEGRADED
        details.append(f"restarted by Docker (restart count {restarts}) at {restarted_at:%H:%M:%S} UTC")
    else:
        health = Health.HEALTHY
    if silent:
        details.append(f"server{'s' if len(silent) > 1 else ''} {', '.join(repr(s) for s in sorted(silent))} "
                       "did not answer: not observed")
        if previous is not None and _ORDER[previous.health] > _ORDER[health]:
            health = previous.health
    obs = Observation(deployment_id, health, "; ".join(details), restarts, restarted_at)
    oomed = [c.last_oom for c in release if c.oom_kills and c.last_oom]
    return _with_oom(obs, sum(c.oom_kills for c in release), max(oomed) if oomed else None, now, memory_limit)


def _observe(deployment_id: int, release: list[ContainerView], previous: Previous | None,
             now: datetime) -> Observation:
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
