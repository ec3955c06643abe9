"""Queries for app health: which apps have a serving release to watch, and the monitor's records.

The only place that builds SQL for the app_health table. A change of health is written by compare
and set on the stored value, so two monitors (or a retried poll) record and announce it once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.apps import placement
from services.apps import repository as apps_repo
from services.core.states import State
from services.db.models import App, AppHealth, Deployment, Notification, Server
from services.health.assess import Health, Observation, Previous, Watch


@dataclass(frozen=True)
class Target:
    """An app with a serving release, and each server to judge it on (assess.Watch), in rollout order."""

    app_id: int
    app: str
    deployment_id: int
    watches: tuple[Watch, ...]
    memory_limit: int = 0

    @property
    def servers(self) -> tuple[str, ...]:
        return tuple(w.server for w in self.watches)


def _replicas(outcomes: list | None) -> dict[str, int]:
    return {o["server"]: int(o.get("replicas") or 0) for o in outcomes or [] if o.get("server")}


def targets(session: Session) -> list[Target]:
    """Every app with a serving release. Its servers: where the serving deployment SUCCEEDED
    (placement.succeeded_servers: the app's one server for a deployment recorded before
    outcomes), in the app's rollout order (app_servers) and then any it is moving away from;
    while a deployment of the app is RUNNING, the servers of its outcomes too, each with that
    deployment's id (assess.judged picks whichever release serves there)."""
    rows = session.execute(
        select(App.id, App.name, Server.name, App.current_deployment_id, App.memory_limit_bytes,
               Deployment.server_outcomes)
        .join(Server, App.server_id == Server.id)
        .join(Deployment, Deployment.id == App.current_deployment_id, isouter=True)
        .where(App.current_deployment_id.is_not(None)).order_by(App.id)).all()
    ids = [r[0] for r in rows]
    order = apps_repo.server_names_by_app(session, ids)
    running: dict[int, tuple[int, list]] = {}
    for app_id, dep_id, outcomes in session.execute(
            select(Deployment.app_id, Deployment.id, Deployment.server_outcomes)
            .where(Deployment.app_id.in_(ids), Deployment.state == str(State.RUNNING)).order_by(Deployment.id)):
        running.setdefault(app_id, (dep_id, list(outcomes or [])))  # one runs per app at a time
    result = []
    for app_id, name, first, dep_id, memory, outcomes in rows:
        serving = placement.succeeded_servers(outcomes, first)
        replicas = _replicas(outcomes)
        rollout_id, rollout_outcomes = running.get(app_id, (None, []))
        rollout_replicas = _replicas(rollout_outcomes)
        names = [n for n in order.get(app_id, [first]) if n in serving or n in rollout_replicas]
        names += [n for n in [*serving, *rollout_replicas] if n not in names]
        watches = tuple(Watch(n, dep_id if n in serving else None, replicas.get(n, 0),
                              rollout_id if n in rollout_replicas else None, rollout_replicas.get(n, 0))
                        for n in names)
        result.append(Target(app_id, name, dep_id, watches, memory or 0))
    return result


def previous(session: Session, app_ids: Iterable[int]) -> dict[int, Previous]:
    rows = session.scalars(select(AppHealth).where(AppHealth.app_id.in_(list(app_ids))))
    return {r.app_id: Previous(r.deployment_id, Health(r.health), r.restart_count, r.restarted_at) for r in rows}


def records(session: Session, app_ids: Iterable[int]) -> dict[int, AppHealth]:
    return {r.app_id: r for r in session.scalars(select(AppHealth).where(AppHealth.app_id.in_(list(app_ids))))}


def record(session: Session, app_id: int, before: Health | None, obs: Observation, now: datetime,
           stale: bool = False) -> bool:
    """Stores the observation (`stale`: some of the app's servers did not answer); True when it
    is this call that moved health from `before`."""
    values = dict(deployment_id=obs.deployment_id, health=str(obs.health), detail=obs.detail,
                  restart_count=obs.restart_count, restarted_at=obs.restarted_at, observed_at=now, stale=stale)
    if before is None:
        # A concurrent first record fails this transaction on the primary key: nothing announced twice.
        session.add(AppHealth(app_id=app_id, **values))
        session.flush()
        return True
    result = session.execute(
        update(AppHealth).where(AppHealth.app_id == app_id, AppHealth.health == str(before)).values(**values))
    return result.rowcount == 1 and before != obs.health


def last_oom_announced(session: Session, deployment_id: int) -> datetime | None:
    """The agent's time of the last OOM kill announced for the release ("app.oom" in the outbox)."""
    body = session.scalar(
        select(Notification.body).where(Notification.deployment_id == deployment_id,
                                        Notification.body.contains('"event": "app.oom"'))
        .order_by(Notification.id.desc()).limit(1))
    if body is None:
        return None
    try:
        return datetime.fromisoformat(json.loads(body)["oom"]["last_time"])
    except (ValueError, KeyError, TypeError):
        return None


def mark_stale(session: Session, app_ids: Iterable[int]) -> None:
    """The server did not answer: the last observation stays, flagged."""
    session.execute(update(AppHealth).where(AppHealth.app_id.in_(list(app_ids))).values(stale=True))
