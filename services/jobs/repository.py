"""Queries for the job table. The only place that builds SQL for jobs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import bindparam, func, insert, select, text, union_all, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from services.db import locks
from services.db.models import Job


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    deployment_id: int
    attempts: int


def claim_next(session: Session, worker: str, lease: timedelta, now: datetime | None = None) -> ClaimedJob | None:
    """Takes the oldest job whose app has no other live claim: queued, or claimed with an expired
    lease. `now` is a test's clock; None measures leases on the database's clock.

    SQLite: the write transaction (BEGIN IMMEDIATE) serializes claimers, so one look sees every
    claim. PostgreSQL: claimers run at once, and one cannot see another's claim before it commits,
    so two jobs of one app could both look free. There the first look also tries the app's advisory
    transaction lock (held until the claimer commits), and a claimer skips the app when another
    holds it, the way SKIP LOCKED skips a row; holding it, it looks again at that app alone, in a
    statement of its own (a new snapshot under READ COMMITTED). A claim committed since the first
    look is seen then (the lock is released after the commit is visible), and the app's oldest
    claimable job is the one taken: one app's jobs never run at once, nor out of order. Both looks
    are statements of the function serversinc_claim_job (see claim_next_on_postgres).
    """
    if session.bind.dialect.name == "postgresql":
        return claim_next_on_postgres(session.connection(), worker, lease, now)
    now = now or _sqlite_now(session)
    first = _oldest_claimable(now).subquery()
    job = session.scalar(select(Job).where(Job.id == select(first.c.id).scalar_subquery()))
    if job is None:
        return None
    job.status = "claimed"
    job.claimed_by = worker
    job.lease_until = now + lease
    job.attempts += 1
    session.flush()
    return ClaimedJob(job.id, job.deployment_id, job.attempts)


def _sqlite_now(session: Session) -> datetime:
    raw = session.scalar(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')"))
    return datetime.fromisoformat(raw).replace(tzinfo=timezone.utc)


def _busy_apps(now: datetime):
    return select(Job.app_id).where(Job.status == "claimed", Job.lease_until > now)


def _oldest_claimable(now: datetime):
    """(id, app_id) of the oldest claimable job: the older of the oldest queued job and the oldest
    whose lease ran out, each found through ix_jobs_status_id (one OR of the two would read every
    finished job in the table, a cost that grows with history)."""
    def oldest(status):
        q = select(Job.id, Job.app_id).where(status, Job.app_id.not_in(_busy_apps(now)))
        return select(q.order_by(Job.id).limit(1).subquery())

    both = union_all(oldest(Job.status == "queued"),
                     oldest((Job.status == "claimed") & (Job.lease_until <= now))).subquery()
    return select(both.c.id, both.c.app_id).order_by(both.c.id).limit(1)


# PostgreSQL's claim is the function serversinc_claim_job (migration 0014, where its statements
# are): the queue's hot path in one statement, so in autocommit one round trip. Leases are naive
# UTC; `now` is the caller's clock or, when NULL, the database's.
_PG_CLAIM = text("SELECT job_id, job_deployment_id, job_attempts FROM serversinc_claim_job("
                 "CAST(:space AS integer), CAST(:worker AS text), CAST(:lease AS interval), CAST(:now AS timestamp))")


def claim_next_on_postgres(connection: Connection, worker: str, lease: timedelta,
                           now: datetime | None = None) -> ClaimedJob | None:
    """`claim_next` on PostgreSQL as one statement. On a connection in autocommit (Database.autocommit)
    that statement is the claim's whole transaction: one round trip, no BEGIN or COMMIT, and the
    app's advisory lock is released when it commits."""
    naive_now = now.astimezone(timezone.utc).replace(tzinfo=None) if now is not None else None
    row = connection.execute(_PG_CLAIM, {"space": locks.APP_CLAIMS, "worker": worker, "lease": lease,
                                         "now": naive_now}).first()
    return ClaimedJob(*row) if row is not None else None


_INSERT = insert(Job.__table__)


def insert_queued(session: Session, jobs: list[tuple[int, int]]) -> None:
    """Queued jobs for these (deployment id, app id), in one Core executemany (no unit of work)."""
    if jobs:
        session.connection().execute(_INSERT, [{"deployment_id": d, "app_id": a, "status": "queued"} for d, a in jobs])


def extend_leases(session: Session, job_ids: Iterable[int], worker: str, lease_until: datetime) -> None:
    ids = list(job_ids)
    if ids:
        session.execute(
            update(Job)
            .where(Job.id.in_(ids), Job.claimed_by == worker, Job.status == "claimed")
            .values(lease_until=lease_until)
        )


def _this_attempt():
    return (Job.id == bindparam("job"), Job.status == "claimed", Job.claimed_by == bindparam("by"),
            Job.attempts == bindparam("attempt"))


_HOLDS = update(Job).where(*_this_attempt()).values(attempts=bindparam("same_attempt"))
_FINISH = update(Job).where(*_this_attempt()).values(status="done", lease_until=None)


def holds(session: Session, job_id: int, worker: str, attempt: int) -> bool:
    """True when the job is still this attempt's claim. A no-op UPDATE, not a SELECT: it takes the
    row's write lock (PostgreSQL), so no claim can take the job over before the caller commits."""
    # On the session's connection, as Core: the ORM's bulk-update path costs more than the update.
    result = session.connection().execute(_HOLDS, {"job": job_id, "by": worker, "attempt": attempt,
                                                         "same_attempt": attempt})
    return bool(result.rowcount)


def finish_claimed(session: Session, job_id: int, worker: str, attempt: int) -> bool:
    """Marks the job done only if it is still this attempt's claim; False when another took it over."""
    result = session.connection().execute(_FINISH, {"job": job_id, "by": worker, "attempt": attempt})
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
