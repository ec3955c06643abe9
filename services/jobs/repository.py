"""Queries for the job table. The only place that builds SQL for jobs."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from services.db.models import Job


def claim_next(session: Session, worker: str, now: datetime, lease_until: datetime) -> Job | None:
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
            update(Job)
            .where(Job.id.in_(ids), Job.claimed_by == worker, Job.status == "claimed")
            .values(lease_until=lease_until)
        )


def holds(session: Session, job_id: int, worker: str, attempt: int) -> bool:
    """True when the job is still this attempt's claim. A no-op UPDATE, not a SELECT: it takes the
    row's write lock (PostgreSQL), so no claim can take the job over before the caller commits."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "claimed", Job.claimed_by == worker, Job.attempts == attempt)
        .values(attempts=attempt)
    )
    return bool(result.rowcount)


def finish_claimed(session: Session, job_id: int, worker: str, attempt: int) -> bool:
    """Marks the job done only if it is still this attempt's claim; False when another took it over."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "claimed", Job.claimed_by == worker, Job.attempts == attempt)
        .values(status="done", lease_until=None)
    )
    return bool(result.rowcount)


def finish_for_deployment(session: Session, deployment_id: int) -> None:
    """Ends a deployment's job whoever holds it: the deployment ended without a worker (cancel, supersede)."""
    session.execute(update(Job).where(Job.deployment_id == deployment_id).values(status="done", lease_until=None))


def release_all_claims(session: Session, now: datetime) -> int:
    """Makes every claimed job claimable at once: used when the only worker process restarts."""
    result = session.execute(update(Job).where(Job.status == "claimed").values(lease_until=now))
    return result.rowcount or 0


def next_lease_expiry(session: Session) -> datetime | None:
    return session.scalar(select(func.min(Job.lease_until)).where(Job.status == "claimed"))
