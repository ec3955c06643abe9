"""Deploy workers: threads that claim jobs, hand each to the runner, and keep their leases alive.

Deployments of different apps run in parallel; the claim query never hands out a second job for
an app whose job is still leased, so one app's deployments run one after the other, oldest first.
The worker knows jobs, not deployments: what a job does is the runner's (the deploy pipeline).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable

from services.agents.port import CancelToken
from services.jobs.cancels import CancelRegistry
from services.jobs.queue import Claim, JobQueue, StaleClaim
from services.observability import logs

log = logging.getLogger(__name__)

# Carries out one claimed job; returns when the job is finished or left to resume.
Runner = Callable[[Claim, CancelToken], None]


class Worker:
    # Longest sleep between claims when nothing wakes the worker: only matters for leases that
    # expire (work of a crashed worker); new jobs wake it at once.
    IDLE_SECONDS = 5.0

    def __init__(self, queue: JobQueue, runner: Runner, cancels: CancelRegistry, *, threads: int = 4):
        self.queue = queue
        self.runner = runner
        self.cancels = cancels
        self.name = f"worker-{uuid.uuid4().hex[:8]}"
        self._threads = [threading.Thread(target=self._loop, name=f"{self.name}-{i}", daemon=True) for i in range(threads)]
        self._heart = threading.Thread(target=self._heartbeat, name=f"{self.name}-lease", daemon=True)
        self._stopping = threading.Event()
        self._running: dict[int, tuple[int, CancelToken]] = {}  # job id -> (deployment id, token)
        self._lock = threading.Lock()

    def start(self) -> None:
        for t in self._threads:
            t.start()
        self._heart.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stops claiming; running deployments are interrupted and left for the next start to resume."""
        self._stopping.set()
        with self._lock:
            tokens = [token for _, token in self._running.values()]
        for token in tokens:
            token.shutdown = True
            token.cancel()
        for _ in self._threads:
            self.queue.wake()
        for t in self._threads:
            if t.is_alive():
                t.join(timeout)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                claimed = self.queue.claim(self.name)
            except Exception:
                log.exception("claiming a job failed")
                claimed = None
            if claimed is None:
                expiry = self.queue.seconds_until_lease_expiry()
                wait = self.IDLE_SECONDS if expiry is None else min(self.IDLE_SECONDS, expiry + 0.05)
                self.queue.wait(wait)
                continue
            self._run(claimed)

    def _run(self, claim: Claim) -> None:
        token = CancelToken()
        with self._lock:
            self._running[claim.job_id] = (claim.deployment_id, token)
        self.cancels.register(claim.deployment_id, token.cancel)
        tag = logs.deployment_id.set(claim.deployment_id)
        try:
            self.runner(claim, token)
        except StaleClaim as stale:
            log.warning("%s; its outcome is left to the attempt that holds it", stale)
        except Exception:
            log.exception("job %s (deployment %s) crashed", claim.job_id, claim.deployment_id)
        finally:
            logs.deployment_id.reset(tag)
            self.cancels.unregister(claim.deployment_id)
            with self._lock:
                self._running.pop(claim.job_id, None)
            self.queue.wake()  # the app's next deployment may now be claimable

    def _heartbeat(self) -> None:
        interval = max(1.0, self.queue.lease.total_seconds() / 3)
        while not self._stopping.wait(interval):
            with self._lock:
                job_ids = list(self._running)
            if job_ids:
                try:
                    self.queue.heartbeat(job_ids, self.name)
                except Exception:
                    log.exception("extending leases failed")
                try:
                    # A cancel from another replica arrives on the bus at once; this catches one
                    # whose notification was lost with a broken connection.
                    self.cancels.resync()
                except Exception:
                    log.exception("looking up cancel requests failed")
