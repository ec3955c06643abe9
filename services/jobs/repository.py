"""Queries for the job table. The only place that builds SQL for jobs."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, or_, select, union_all, update
from sqlalchemy.orm import Session

from services.db import locks
from services.db.models import Job


def claim_next(session: Session, worker: str, now: datetime, lease_until: datetime) -> Job | None:
    """Takes the oldest job whose app has no other live claim: queued, or claimed with an expired lease.

    SQLite: the write transaction (BEGIN IMMEDIATE) serializes claimers, so one look sees every
    claim. PostgreSQL: claimers run at once, and one cannot see another's claim before it commits,
    so two jobs of one app could both look free. There the first look also tries the app's advisory
    transaction lock (held until the claimer commits), and a claimer skips the app when another
    holds it, the way SKIP LOCKED skips a row; holding it, it looks again at that app alone. A claim
    committed since the first look is seen then (the lock is released after the commit is visible),
    and the app's oldest claimable job is the one taken: one app's jobs never run at once, nor out
    of order.
    """
    if session.bind.dialect.name != "postgresql":
        first = _oldest_claimable(now).subquery()
        job = session.scalar(select(Job).where(Job.id == select(first.c.id).scalar_subquery()))
    else:
        job = _claimable_under_app_lock(session, now)
    if job is None:
        return None
    job.status = "claimed"
    job.claimed_by = worker
    job.lease_until = lease_until
    job.attempts += 1
    return job


def _busy_apps(now: datetime):
    return select(Job.app_id).where(Job.status == "claimed", Job.lease_until > now)


def _oldest_claimable(now: datetime, skipped: Iterable[int] = ()):
    """(id, app_id) of the oldest claimable job: the older of the oldest queued job and the oldest
    whose lease ran out, each found through ix_jobs_status_id (one OR of the two would read every
    finished job in the table, a cost that grows with history)."""
    skipped = list(skipped)

    def oldest(status):
        q = select(Job.id, Job.app_id).where(status, Job.app_id.not_in(_busy_apps(now)))
        if skipped:
            q = q.where(Job.app_id.not_in(skipped))
        return select(q.order_by(Job.id).limit(1).subquery())

    both = union_all(oldest(Job.status == "queued"),
                     oldest((Job.status == "claimed") & (Job.lease_until <= now))).subquery()
    return select(both.c.id, both.c.app_id).order_by(both.c.id).limit(1)


def _claimable_under_app_lock(session: Session, now: datetime) -> Job | None:
    skipped: set[int] = set()
    while True:
        first = _oldest_claimable(now, skipped).subquery()
        # One row at most (LIMIT 1 in the subquery): the lock is tried for that app only.
        row = session.execute(select(first.c.app_id, locks.try_app_claim(first.c.app_id))).first()
        if row is None:
            return None
        app_id, locked = row
        skipped.add(app_id)
        if not locked:
            continue  # another replica's worker is claiming this app's job right now
        job = session.scalar(
            select(Job)
            .where(Job.app_id == app_id, Job.app_id.not_in(_busy_apps(now)),
                   or_(Job.status == "queued", (Job.status == "claimed") & (Job.lease_until <= now)))
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
