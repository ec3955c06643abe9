"""SQL for runs: the only module that queries the `runs` table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.db.models import Run


def add(session: Session, **fields) -> Run:
    run = Run(**fields)
    session.add(run)
    session.flush()
    return run


def get(session: Session, app_id: int, run_id: int) -> Run | None:
    return session.scalar(select(Run).where(Run.app_id == app_id, Run.id == run_id))


def page(session: Session, app_id: int, *, before: int | None, limit: int) -> list[Run]:
    """The app's runs, newest first, older than `before` (a run id) when given."""
    q = select(Run).where(Run.app_id == app_id)
    if before is not None:
        q = q.where(Run.id < before)
    return list(session.scalars(q.order_by(Run.id.desc()).limit(limit)))


def finish(session: Session, run_id: int, *, state: str, exit_code: int | None, reason: str,
           ended_at: datetime) -> Run | None:
    run = session.get(Run, run_id)
    if run is not None:
        run.state, run.exit_code, run.reason, run.ended_at = state, exit_code, reason, ended_at
    return run


def started(session: Session, run_id: int, container_id: str) -> None:
    run = session.get(Run, run_id)
    if run is not None:
        run.container_id = container_id
