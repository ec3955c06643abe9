"""Queries for deployments, their events and jobs. The only place that builds SQL for them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from services.core.states import State
from services.db.models import Deployment, DeploymentEvent, Job


def get(session: Session, deployment_id: int) -> Deployment | None:
    return session.get(Deployment, deployment_id)


def has_state(session: Session, app_id: int, states: Iterable[State]) -> bool:
    q = select(Deployment.id).where(Deployment.app_id == app_id, Deployment.state.in_([str(s) for s in states]))
    return session.scalar(q.limit(1)) is not None


def list_for_app(session: Session, app_id: int | None, *, before: int | None, limit: int) -> list[Deployment]:
    q = select(Deployment)
    if app_id is not None:
        q = q.where(Deployment.app_id == app_id)
    if before is not None:
        q = q.where(Deployment.id < before)
    return list(session.scalars(q.order_by(Deployment.id.desc()).limit(limit)))


def queue_positions(session: Session, app_ids: Iterable[int]) -> dict[int, int]:
    """1-based place of every queued deployment in its app's queue, oldest first."""
    q = (
        select(Deployment.id, Deployment.app_id)
        .where(Deployment.app_id.in_(list(set(app_ids))), Deployment.state == State.QUEUED)
        .order_by(Deployment.id)
    )
    seen: dict[int, int] = {}
    positions: dict[int, int] = {}
    for dep_id, app_id in session.execute(q):
        seen[app_id] = seen.get(app_id, 0) + 1
        positions[dep_id] = seen[app_id]
    return positions


def queued_for_app(session: Session, app_id: int) -> list[Deployment]:
    q = select(Deployment).where(Deployment.app_id == app_id, Deployment.state == State.QUEUED)
    return list(session.scalars(q.order_by(Deployment.id)))


def last_seq(session: Session, deployment_id: int) -> int:
    q = select(func.max(DeploymentEvent.seq)).where(DeploymentEvent.deployment_id == deployment_id)
    return session.scalar(q) or 0


def events_after(session: Session, deployment_id: int, after_seq: int, limit: int = 1000) -> list[DeploymentEvent]:
    q = (
        select(DeploymentEvent)
        .where(DeploymentEvent.deployment_id == deployment_id, DeploymentEvent.seq > after_seq)
        .order_by(DeploymentEvent.seq)
        .limit(limit)
    )
    return list(session.scalars(q))


def claim_next_job(session: Session, worker: str, now: datetime, lease_until: datetime) -> Job | None:
    """Takes the oldest job whose app has no other live claim: queued, or claimed with an expired lease.

    Runs inside a write transaction (SQLite: BEGIN IMMEDIATE), so two workers never take one job.
    """
    busy_apps = select(Job.app_id).where(Job.status == "claimed", Job.lease_until > now)
    q = (
        select(Job)
        .where(
            or_(Job.status == "queued", (Job.status == "claimed") & (Job.lease_until <= now)),
            Job.app_id.not_in(busy_apps),
        )
        .order_by(Job.id)
        .limit(1)
    )
    if session.bind.dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    job = session.scalar(q)
    if job is None:
        return None
    job.status = "claimed"
    job.claimed_by = worker
    job.lease_until = lease_until
    job.attempts += 1
    return job


def extend_leases(session: Session, job_ids: Iterable[int], worker: str, lease_until: datetime) -> None:
    ids = list(job_ids)
    if ids:
        session.execute(
            update(Job).where(Job.id.in_(ids), Job.claimed_by == worker).values(lease_until=lease_until)
        )


def finish_job(session: Session, deployment_id: int) -> None:
    session.execute(update(Job).where(Job.deployment_id == deployment_id).values(status="done", lease_until=None))


def release_all_claims(session: Session, now: datetime) -> int:
    """Makes every claimed job claimable at once: used when the only worker process restarts."""
    result = session.execute(update(Job).where(Job.status == "claimed").values(lease_until=now))
    return result.rowcount or 0


def next_lease_expiry(session: Session) -> datetime | None:
    return session.scalar(select(func.min(Job.lease_until)).where(Job.status == "claimed"))


def latest_finished_and_active(session: Session, app_ids: Iterable[int]) -> tuple[dict[int, Deployment], set[int]]:
    """Per app: its newest finished deployment, and the set of apps with one queued or running."""
    ids = list(set(app_ids))
    newest = (
        select(func.max(Deployment.id))
        .where(Deployment.app_id.in_(ids), Deployment.state.in_([State.SUCCEEDED, State.FAILED, State.CANCELLED]))
        .group_by(Deployment.app_id)
    )
    latest = {d.app_id: d for d in session.scalars(select(Deployment).where(Deployment.id.in_(newest)))}
    active = set(
        session.scalars(
            select(Deployment.app_id).where(Deployment.app_id.in_(ids), Deployment.state.in_([State.QUEUED, State.RUNNING]))
        )
    )
    return latest, active


def previous_success(session: Session, app_id: int, *, before: int | None) -> Deployment | None:
    """The newest successful deployment with a release, older than `before` (the serving one)."""
    q = select(Deployment).where(
        Deployment.app_id == app_id, Deployment.state == State.SUCCEEDED, Deployment.release.is_not(None)
    )
    if before is not None:
        q = q.where(Deployment.id < before)
    return session.scalar(q.order_by(Deployment.id.desc()).limit(1))


def by_request_id(session: Session, request_id: str) -> Deployment | None:
    return session.scalar(select(Deployment).where(Deployment.request_id == request_id))


def count_queued(session: Session) -> int:
    return session.scalar(select(func.count(Deployment.id)).where(Deployment.state == State.QUEUED)) or 0
