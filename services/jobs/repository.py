"""Queries for the job table. The only place that builds SQL for jobs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import bindparam, func, insert, select, text, union_all, update
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
    claimable job is the one taken: one app's jobs never run at once, nor out of order.
    """
    if session.bind.dialect.name == "postgresql":
        return _claim_under_app_lock(session, worker, lease, now)
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


# PostgreSQL's claim, as two fixed statements (the claim is the queue's hot path: built once,
# prepared by the server after a few runs, two round trips). Leases are naive UTC; `now` is the
# caller's clock or, when NULL, the database's.
_PG_NOW = "COALESCE(CAST(:now AS timestamp), statement_timestamp() AT TIME ZONE 'UTC')"
_PG_BUSY = f"SELECT app_id FROM jobs WHERE status = 'claimed' AND lease_until > {_PG_NOW}"
_PG_FIRST_LOOK = text(f"""
SELECT c.app_id, pg_try_advisory_xact_lock(CAST(:space AS integer), c.app_id) AS locked
FROM (
  SELECT id, app_id FROM (
    (SELECT id, app_id FROM jobs
      WHERE status = 'queued' AND app_id NOT IN ({_PG_BUSY}) AND NOT (app_id = ANY(CAST(:skipped AS integer[])))
      ORDER BY id LIMIT 1)
    UNION ALL
    (SELECT id, app_id FROM jobs
      WHERE status = 'claimed' AND lease_until <= {_PG_NOW} AND app_id NOT IN ({_PG_BUSY})
        AND NOT (app_id = ANY(CAST(:skipped AS integer[])))
      ORDER BY id LIMIT 1)
  ) AS candidates ORDER BY id LIMIT 1
) AS c""")
_PG_TAKE = text(f"""
UPDATE jobs SET status = 'claimed', claimed_by = :worker, attempts = attempts + 1,
  lease_until = {_PG_NOW} + CAST(:lease AS interval)
WHERE id = (
  SELECT id FROM jobs
  WHERE app_id = :app AND app_id NOT IN ({_PG_BUSY})
    AND (status = 'queued' OR (status = 'claimed' AND lease_until <= {_PG_NOW}))
  ORDER BY id LIMIT 1 FOR UPDATE)
RETURNING id, deployment_id, attempts""")


def _claim_under_app_lock(session: Session, worker: str, lease: timedelta, now: datetime | None) -> ClaimedJob | None:
    naive_now = now.astimezone(timezone.utc).replace(tzinfo=None) if now is not None else None
    skipped: list[int] = []
    while True:
        row = session.execute(_PG_FIRST_LOOK, {"space": locks.APP_CLAIMS, "now": naive_now,
                                               "skipped": skipped}).first()
        if row is None:
            return None
        app_id, locked = row
        skipped.append(app_id)
        if not locked:
            continue  # another replica's worker is claiming this app's job right now
        taken = session.execute(_PG_TAKE, {"worker": worker, "app": app_id, "now": naive_now,
                                           "lease": lease}).first()
        if taken is not None:
            return ClaimedJob(*taken)


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
