"""Queries for the job table. The only place that builds SQL for jobs."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from services.db import locks
from services.db.models import Job


def claim_next(session: Session, worker: str, now: datetime, lease_until: datetime) -> Job | None:
    """Takes the oldest job whose app has no other live claim: queued, or claimed with an expired lease.

    SQLite: the write transaction (BEGIN IMMEDIATE) serializes claimers, so one look sees every
    claim. PostgreSQL: claimers run at once, and one cannot see another's claim before it commits,
    so two jobs of one app could both look free. There a claimer first takes the app's advisory
    transaction lock (held until it commits), skipping the app when another claimer holds it, the
    way SKIP LOCKED skips a row; holding it, it looks again at that app alone. A claim committed
    since the first look is seen then (the lock is released after the commit is visible), and the
    app's oldest claimable job is the one taken: one app's jobs never run at once, nor out of order.
    """
    claimable = (
        or_(Job.status == "queued", (Job.status == "claimed") & (Job.lease_until <= now)),
        Job.app_id.not_in(_busy_apps(now)),
    )
    oldest = select(Job).where(*claimable).order_by(Job.id).limit(1)
    if session.bind.dialect.name != "postgresql":
        job = session.scalar(oldest)
    else:
        job = _claimable_under_app_lock(session, claimable)
    if job is None:
        return None
    job.status = "claimed"
    job.claimed_by = worker
    job.lease_until = lease_until
    job.attempts += 1
    return job


def _busy_apps(now: datetime):
    return select(Job.app_id).where(Job.status == "claimed", Job.lease_until > now)


def _claimable_under_app_lock(session: Session, claimable: tuple) -> Job | None:
    skipped: set[int] = set()
    while True:
        q = select(Job.app_id).where(*claimable).order_by(Job.id).limit(1)
        if skipped:
            q = q.where(Job.app_id.not_in(skipped))
        app_id = session.scalar(q)
        if app_id is None:
            return None
        skipped.add(app_id)
        if not locks.try_hold_app_claim(session, app_id):
            continue  # another replica's worker is claiming this app's job right now
        job = session.scalar(select(Job).where(*claimable, Job.app_id == app_id)
                             .order_by(Job.id).limit(1).with_for_update())
        if job is not None:
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
