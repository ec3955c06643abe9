"""Event retention: only an app's last M deployments keep their events (their stored log).

Older deployments keep their row (history: commit, state, times, release) but their events are
deleted by a periodic sweep, all but the terminal STATE event (the one a watcher stops at), and
one LOG event is put just before it saying the log was pruned, so `deployments watch` of such a
deployment says so instead of showing nothing, and GetDeployment reports `log_pruned`. Only
finished deployments are swept, and the newest M of each app (by id, any state) never are.

With several replicas every one sweeps; a sweep is one transaction per deployment whose deletes
and insert are idempotent (a second sweep finds it pruned and skips it), and the insert's unique
(deployment_id, seq) makes a concurrent duplicate fail harmlessly (logged, retried next round).
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from services.core.states import EventKind, Phase, State
from services.db.models import Deployment, DeploymentEvent, utcnow
from services.db.session import Database

log = logging.getLogger(__name__)

DEFAULT_KEEP_DEPLOYMENTS = 50
DEFAULT_PERIOD_SECONDS = 600.0
_TERMINAL = [str(s) for s in State if s.terminal]


def pruned_log_message(keep: int) -> str:
    return (f"the log of this deployment was pruned: only the last {keep} deployments of an app keep "
            "their events (SERVERSINC_EVENT_RETENTION_DEPLOYMENTS)")


def is_pruned_message(message: str) -> bool:
    return message.startswith("the log of this deployment was pruned")


def log_pruned(session, deployment_id: int) -> bool:
    """True when the sweep pruned this deployment's events (its marker is stored)."""
    marker = session.scalar(select(DeploymentEvent.message).where(
        DeploymentEvent.deployment_id == deployment_id, DeploymentEvent.kind == str(EventKind.LOG),
        DeploymentEvent.message.like("the log of this deployment was pruned%")).limit(1))
    return marker is not None


class EventRetention:
    def __init__(self, db: Database, *, keep: int = DEFAULT_KEEP_DEPLOYMENTS,
                 period: float = DEFAULT_PERIOD_SECONDS) -> None:
        self.db = db
        self.keep = max(1, keep)
        self.period = period
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def due(self) -> list[int]:
        """Finished deployments past each app's newest `keep` that still hold more than their
        terminal event and the marker."""
        with self.db.read() as s:
            ranked = select(Deployment.id, Deployment.app_id, Deployment.state,
                            func.row_number().over(partition_by=Deployment.app_id,
                                                   order_by=Deployment.id.desc()).label("rank")).subquery()
            old = select(ranked.c.id).where(ranked.c.rank > self.keep, ranked.c.state.in_(_TERMINAL))
            rows = s.execute(select(DeploymentEvent.deployment_id)
                             .where(DeploymentEvent.deployment_id.in_(old))
                             .group_by(DeploymentEvent.deployment_id)
                             .having(func.count() > 2)).scalars().all()
        return sorted(rows)

    def sweep(self) -> int:
        """Prune every deployment due; how many were pruned."""
        pruned = 0
        for deployment_id in self.due():
            try:
                if self._prune(deployment_id):
                    pruned += 1
            except IntegrityError:  # another replica pruned it at the same moment
                log.info("deployment %s: its events were pruned concurrently", deployment_id)
        if pruned:
            log.info("pruned the events of %d old deployment(s) (keeping the last %d per app)", pruned, self.keep)
        return pruned

    def _prune(self, deployment_id: int) -> bool:
        with self.db.session() as s:
            last = s.scalars(select(DeploymentEvent).where(DeploymentEvent.deployment_id == deployment_id)
                             .order_by(DeploymentEvent.seq.desc()).limit(1)).first()
            if last is None or last.seq < 3 or log_pruned(s, deployment_id):
                return False
            s.execute(delete(DeploymentEvent).where(DeploymentEvent.deployment_id == deployment_id,
                                                    DeploymentEvent.seq < last.seq))
            s.add(DeploymentEvent(deployment_id=deployment_id, seq=last.seq - 1, created_at=utcnow(),
                                  kind=str(EventKind.LOG), phase=last.phase or str(Phase.QUEUED),
                                  message=pruned_log_message(self.keep), state=""))
        return True

    # ---- schedule --------------------------------------------------------------------------
    def start(self) -> None:
        if self.period <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="event-retention", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            try:
                self.sweep()
            except Exception:  # never takes the control plane down; the next round tries again
                log.exception("event retention sweep failed")
            if self._stop.wait(self.period):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
