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

from services.db.models import App, AppHealth, Notification, Server
from services.health.assess import Health, Observation, Previous


@dataclass(frozen=True)
class Target:
    """An app with a serving release, and the server it runs on."""

    app_id: int
    app: str
    server: str
    deployment_id: int


def targets(session: Session) -> list[Target]:
    q = (select(App.id, App.name, Server.name, App.current_deployment_id).join(Server, App.server_id == Server.id)
         .where(App.current_deployment_id.is_not(None)).order_by(App.id))
    return [Target(*row) for row in session.execute(q)]


def previous(session: Session, app_ids: Iterable[int]) -> dict[int, Previous]:
    rows = session.scalars(select(AppHealth).where(AppHealth.app_id.in_(list(app_ids))))
    return {r.app_id: Previous(r.deployment_id, Health(r.health), r.restart_count, r.restarted_at) for r in rows}


def records(session: Session, app_ids: Iterable[int]) -> dict[int, AppHealth]:
    return {r.app_id: r for r in session.scalars(select(AppHealth).where(AppHealth.app_id.in_(list(app_ids))))}


def record(session: Session, app_id: int, before: Health | None, obs: Observation, now: datetime) -> bool:
    """Stores the observation; True when it is this call that moved health from `before`."""
    values = dict(deployment_id=obs.deployment_id, health=str(obs.health), detail=obs.detail,
                  restart_count=obs.restart_count, restarted_at=obs.restarted_at, observed_at=now, stale=False)
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
