"""The job queue: enqueue inside the caller's transaction, claim with a lease, wake workers at once.

Jobs live in the database (durable across restarts). Workers in this process are woken through a
condition variable the moment a job is committed, so no deploy waits for a polling interval.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from services.db.models import Deployment, Job, utcnow
from services.db.session import Database
from services.deployments import repository as repo


class JobQueue:
    def __init__(self, db: Database, *, lease_seconds: float = 30.0):
        self.db = db
        self.lease = timedelta(seconds=lease_seconds)
        self._wake = threading.Condition()
        self._pending_wakes = 0

    def enqueue(self, session: Session, deployment: Deployment) -> Job:
        """Adds the job in the caller's transaction; call `wake()` after it commits."""
        job = Job(deployment_id=deployment.id, app_id=deployment.app_id, status="queued")
        session.add(job)
        return job

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

    def claim(self, worker: str) -> tuple[int, int] | None:
        """Returns (job id, deployment id) of a newly claimed job, or None."""
        now = utcnow()
        with self.db.session() as s:
            job = repo.claim_next_job(s, worker, now, now + self.lease)
            return (job.id, job.deployment_id) if job else None

    def attempts(self, job_id: int) -> int:
        with self.db.read() as s:
            job = s.get(Job, job_id)
            return job.attempts if job else 0

    def heartbeat(self, job_ids: list[int], worker: str) -> None:
        with self.db.session() as s:
            repo.extend_leases(s, job_ids, worker, utcnow() + self.lease)

    def finish(self, session: Session, deployment_id: int) -> None:
        repo.finish_job(session, deployment_id)

    def release_all(self) -> int:
        with self.db.session() as s:
            return repo.release_all_claims(s, utcnow())

    def seconds_until_lease_expiry(self) -> float | None:
        with self.db.read() as s:
            when: datetime | None = repo.next_lease_expiry(s)
        if when is None:
            return None
        return max(0.0, (when - utcnow()).total_seconds())
