"""The job queue: enqueue inside the caller's transaction, claim with a lease, wake workers at once.

Jobs live in the database (durable across restarts). Workers in this process are woken through a
condition variable the moment a job is committed, and workers of other replicas (PostgreSQL) by a
notification on the bus sent with the commit, so no deploy waits for a polling interval.
A claim is fenced by its attempt: once its lease expired and another attempt took the job over,
the old attempt can no longer write anything of the deployment (`fence`, `finish`: `StaleClaim`).

Leases are measured on the database's clock (`Database.now`), read inside the transaction that
claims, extends or compares them: every process sharing the database agrees on whether a lease ran
out, however far their own wall clocks drift.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from services.db.models import Job
from services.db.pubsub import Bus, Channel
from services.db.session import Database
from services.jobs import repository as repo


@dataclass(frozen=True)
class Claim:
    """One attempt at a job: who holds it and which attempt it is (1 for the first)."""

    job_id: int
    deployment_id: int
    worker: str
    attempt: int


class StaleClaim(Exception):
    """The claim's lease expired and another attempt took the job over."""

    def __init__(self, claim: Claim):
        super().__init__(f"job {claim.job_id} (deployment {claim.deployment_id}) is no longer held by "
                         f"{claim.worker} attempt {claim.attempt}")
        self.claim = claim


class JobQueue:
    def __init__(self, db: Database, *, lease_seconds: float = 30.0, clock: Callable[[], datetime] | None = None,
                 bus: Bus | None = None):
        """`clock` is a test's stand-in for the database clock; production leaves it None."""
        self.db = db
        self.lease = timedelta(seconds=lease_seconds)
        self._clock = clock
        self._wake = threading.Condition()
        self._pending_wakes = 0
        self._bus = bus
        if bus is not None:
            bus.subscribe(Channel.JOBS, lambda _payload: self.wake())

    def enqueue(self, session: Session, deployment_id: int, app_id: int) -> Job:
        """Adds the job in the caller's transaction; call `wake()` after it commits (other
        replicas are woken by the commit itself)."""
        job = Job(deployment_id=deployment_id, app_id=app_id, status="queued")
        session.add(job)
        self._announce(session)
        return job

    def enqueue_many(self, session: Session, jobs: list[tuple[int, int]]) -> None:
        """`enqueue` for several (deployment id, app id) at once, in one statement."""
        if jobs:
            repo.insert_queued(session, jobs)
            self._announce(session)

    def announce(self, session: Session) -> None:
        """Jobs changed in the caller's transaction (ended by a repository statement of the
        caller's): wake the other replicas' workers when it commits."""
        self._announce(session)

    def _announce(self, session: Session) -> None:
        """A job may be claimable once the caller commits: wake the other replicas' workers then."""
        if self._bus is not None:
            self._bus.publish(session, Channel.JOBS)

    def wake(self) -> None:
        with self._wake:
            self._pending_wakes += 1
            self._wake.notify_all()

    def wait(self, timeout: float) -> None:
        """Sleeps until `wake()` or the timeout; a wake that came since the last wait returns at once."""
        with self._wake:
            if self._pending_wakes == 0:
                self._wake.wait(timeout)
            self._pending_wakes = 0

    def now(self, session: Session) -> datetime:
        """The clock leases are measured on, read in the caller's transaction."""
        return self._clock() if self._clock else self.db.now(session)

    def claim(self, worker: str) -> Claim | None:
        """The oldest claimable job, now leased to `worker`, or None."""
        # No clock of a test's: the leases are measured in the claim's own statements.
        now = self._clock() if self._clock else None
        if self.db.autocommits:  # the claim is one statement there: one round trip
            with self.db.autocommit() as connection:
                job = repo.claim_next_on_postgres(connection, worker, self.lease, now)
        else:
            with self.db.session() as s:
                job = repo.claim_next(s, worker, self.lease, now)
        return Claim(job.id, job.deployment_id, worker, job.attempts) if job else None

    def heartbeat(self, job_ids: list[int], worker: str) -> None:
        with self.db.session() as s:
            repo.extend_leases(s, job_ids, worker, self.now(s) + self.lease)

    def fence(self, session: Session, claim: Claim) -> None:
        """Raises StaleClaim (so the caller's writes roll back) unless `claim` still holds its job.
        Call it in the transaction of every write an attempt makes: the check and the write commit
        together, so a stale attempt never writes into a deployment another attempt owns."""
        if not repo.holds(session, claim.job_id, claim.worker, claim.attempt):
            raise StaleClaim(claim)

    def finish(self, session: Session, claim: Claim) -> None:
        """Marks the claimed job done in the caller's transaction; raises StaleClaim (so the caller's
        writes roll back) when another attempt holds it now."""
        if not repo.finish_claimed(session, claim.job_id, claim.worker, claim.attempt):
            raise StaleClaim(claim)
        self._announce(session)  # the app's next job, if any, is claimable now

    def discard(self, session: Session, deployment_id: int) -> None:
        """Ends a deployment's job in the caller's transaction when the deployment ended without
        running (cancelled while queued, superseded)."""
        repo.finish_for_deployment(session, deployment_id)
        self._announce(session)

    def release_all(self) -> int:
        with self.db.session() as s:
            return repo.release_all_claims(s, self.now(s))

    def seconds_until_lease_expiry(self) -> float | None:
        with self.db.read() as s:
            when: datetime | None = repo.next_lease_expiry(s)
            now = self.now(s)
        if when is None:
            return None
        return max(0.0, (when - now).total_seconds())
