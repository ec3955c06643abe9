"""Queries for deployments and their events. The only place that builds SQL for them (jobs: services.jobs)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Integer, String, Text, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session

from services.core.states import EventKind, State, Trigger
from services.db.models import App, Deployment, DeploymentEvent, Job


def get(session: Session, deployment_id: int) -> Deployment | None:
    return session.get(Deployment, deployment_id)


def list_for_app(session: Session, app_id: int | None, *, before: int | None, limit: int) -> list[Deployment]:
    q = select(Deployment)
    if app_id is not None:
        q = q.where(Deployment.app_id == app_id)
    if before is not None:
        q = q.where(Deployment.id < before)
    return list(session.scalars(q.order_by(Deployment.id.desc()).limit(limit)))


def queue_positions(session: Session, app_ids: Iterable[int]) -> dict[int, int]:
    """1-based place of every queued deployment in its app's queue, oldest first."""
    q = (
        select(Deployment.id, Deployment.app_id)
        .where(Deployment.app_id.in_(list(set(app_ids))), Deployment.state == State.QUEUED)
        .order_by(Deployment.id)
    )
    seen: dict[int, int] = {}
    positions: dict[int, int] = {}
    for dep_id, app_id in session.execute(q):
        seen[app_id] = seen.get(app_id, 0) + 1
        positions[dep_id] = seen[app_id]
    return positions


def last_seq(session: Session, deployment_id: int) -> int:
    """The deployment's newest event seq, for a writer that appends after it in this transaction.

    On PostgreSQL it first locks the deployment's row until the caller commits: two replicas
    appending to one deployment at once (its worker, and a cancel received by another replica)
    take their numbers one after the other instead of both reading the same max. (On SQLite the
    write transaction already holds the database's one write lock.)
    """
    if session.bind.dialect.name == "postgresql":
        session.execute(select(Deployment.id).where(Deployment.id == deployment_id).with_for_update())
    q = select(func.max(DeploymentEvent.seq)).where(DeploymentEvent.deployment_id == deployment_id)
    return session.scalar(q) or 0


_EVENTS = DeploymentEvent.__table__
_INSERT_EVENT = insert(_EVENTS)
# The next seq is read in the INSERT itself: one statement. The caller holds what keeps two
# writers of one deployment apart (SQLite: the write transaction; PostgreSQL: the deployment's
# row lock, taken first by `append_event`).
_APPEND_EVENT = insert(_EVENTS).from_select(
    ["deployment_id", "seq", "created_at", "kind", "phase", "message", "step_current", "step_total", "state"],
    select(bindparam("deployment_id", type_=Integer),
           func.coalesce(select(func.max(_EVENTS.c.seq)).where(_EVENTS.c.deployment_id == bindparam("deployment_id"))
                         .scalar_subquery(), 0) + 1,
           bindparam("created_at", type_=_EVENTS.c.created_at.type), bindparam("kind", type_=String),
           bindparam("phase", type_=String), bindparam("message", type_=Text),
           bindparam("step_current", type_=Integer), bindparam("step_total", type_=Integer),
           bindparam("state", type_=String)))
_LOCK_DEPLOYMENT = select(Deployment.id).where(Deployment.id == bindparam("id")).with_for_update()


def insert_event(session: Session, values: dict | list[dict]) -> None:
    """An event whose seq the caller knows (a new deployment's first: 1); a list: several, in one
    executemany."""
    if values:
        session.connection().execute(_INSERT_EVENT, values)


def append_event(session: Session, values: dict, *, locked: bool = False) -> None:
    """An event after the deployment's newest one. On PostgreSQL the deployment's row is locked
    first (as `last_seq` does) unless the caller's transaction already holds it (`locked`: it
    updated the row)."""
    connection = session.connection()
    if not locked and connection.dialect.name == "postgresql":
        connection.execute(_LOCK_DEPLOYMENT, {"id": values["deployment_id"]})
    connection.execute(_APPEND_EVENT, values)


def append_events_locked(session: Session, rows: list[dict]) -> None:
    """Events after each deployment's newest one, in one executemany; the caller's transaction
    already holds every one of those deployments' rows (it updated them)."""
    if rows:
        session.connection().execute(_APPEND_EVENT, rows)


def cancel_requested_among(session: Session, deployment_ids: Iterable[int]) -> list[int]:
    """Which of these deployments a caller asked to stop."""
    ids = list(deployment_ids)
    if not ids:
        return []
    q = select(Deployment.id).where(Deployment.id.in_(ids), Deployment.cancel_requested.is_(True))
    return list(session.scalars(q))


def log_totals(session: Session, deployment_id: int) -> tuple[int, int]:
    """(lines, characters) of the deployment's stored LOG events: what counts towards its log cap."""
    q = select(func.count(DeploymentEvent.id), func.coalesce(func.sum(func.length(DeploymentEvent.message)), 0)).where(
        DeploymentEvent.deployment_id == deployment_id, DeploymentEvent.kind == str(EventKind.LOG))
    lines, chars = session.execute(q).one()
    return int(lines), int(chars)


def events_after(session: Session, deployment_id: int, after_seq: int, limit: int = 1000) -> list[DeploymentEvent]:
    q = (
        select(DeploymentEvent)
        .where(DeploymentEvent.deployment_id == deployment_id, DeploymentEvent.seq > after_seq)
        .order_by(DeploymentEvent.seq)
        .limit(limit)
    )
    return list(session.scalars(q))


def previous_success(session: Session, app_id: int, *, before: int | None) -> Deployment | None:
    """The newest successful deployment with a release, older than `before` (the serving one)."""
    q = select(Deployment).where(
        Deployment.app_id == app_id, Deployment.state == State.SUCCEEDED, Deployment.release.is_not(None)
    )
    if before is not None:
        q = q.where(Deployment.id < before)
    return session.scalar(q.order_by(Deployment.id.desc()).limit(1))


# The create path (every webhook delivery) runs its queries as statements built once, with bound
# parameters: building a select() per call cost more than running it (~110 of ~140 us on SQLite).
_PUSH = Deployment.__table__.alias("push")


def _newest_push(column):
    """`column` of the app's newest webhook deployment of a named commit, whatever its outcome (a
    subquery correlated with the apps row: one probe of ix_deployments_app_id_id)."""
    return (select(column)
            .where(_PUSH.c.app_id == App.id, _PUSH.c.trigger == str(Trigger.WEBHOOK), _PUSH.c.requested_commit_sha != "")
            .order_by(_PUSH.c.id.desc()).limit(1).scalar_subquery())


# The apps of a group of creates and each one's newest push (services.deployments.pushes) in one
# statement: the app lookup and the older-push rule's facts had been two round trips, the second a
# UNION ALL of one part per create that PostgreSQL planned afresh for every size of group.
_APPS_WITH_NEWEST_PUSH = select(
    App, _newest_push(_PUSH.c.id), _newest_push(_PUSH.c.requested_commit_sha), _newest_push(_PUSH.c.before_commit_sha),
).where(App.name.in_(bindparam("names", expanding=True)))
_SHA = bindparam("sha", type_=String)
_SEEN = select(select(Deployment.id).where(
    Deployment.app_id == bindparam("app_id", type_=Integer),
    or_(Deployment.requested_commit_sha == _SHA, Deployment.commit_sha == _SHA, Deployment.before_commit_sha == _SHA),
).limit(1).exists())


def apps_with_newest_push(session: Session, names: Iterable[str]
                          ) -> dict[str, tuple[App, tuple[int, str, str] | None]]:
    """{name: (app, its newest push as (deployment id, commit, before) or None)} of the apps of these
    names that exist, in one statement."""
    found = {}
    for app, push_id, commit, before in session.execute(_APPS_WITH_NEWEST_PUSH, {"names": sorted(set(names))}):
        found[app.name] = (app, (push_id, commit, before) if push_id is not None else None)
    return found


def push_seen(session: Session, app_id: int, sha: str) -> bool:
    """Whether a deployment of the app named `sha` as its commit, or a push of it replaced `sha`."""
    return bool(session.scalar(_SEEN, {"app_id": app_id, "sha": sha}))


def by_request_id(session: Session, request_id: str) -> Deployment | None:
    return session.scalar(select(Deployment).where(Deployment.request_id == request_id))


def count_queued(session: Session) -> int:
    return session.scalar(select(func.count(Deployment.id)).where(Deployment.state == State.QUEUED)) or 0



_DEPLOYMENTS = Deployment.__table__
_INSERT = insert(_DEPLOYMENTS).returning(*_DEPLOYMENTS.c)
_QUEUE_POSITION = select(func.count(Deployment.id)).where(
    Deployment.app_id == bindparam("app_id"), Deployment.state == State.QUEUED, Deployment.id < bindparam("before"))


def insert_returning(session: Session, values: dict) -> Deployment:
    """Inserts a deployment and returns it as a detached row carrying every column (defaults
    included), as an ORM load would; the caller sets its `app`. A Core INSERT ... RETURNING, not
    a unit-of-work flush: the create path's largest cost before."""
    row = session.execute(_INSERT, values).one()
    return Deployment(**row._asdict())


# Several at once (a group commit of creates): one multi-row INSERT (SQLAlchemy's insertmanyvalues)
# returning only the ids, in the order of the values. Every other column is known before the insert
# (what the caller gives, else the column's default: no column has a server default), so the rows
# are made from those values: decoding every column back for each row was the group's largest cost.
_INSERT_IDS = insert(_DEPLOYMENTS).returning(_DEPLOYMENTS.c.id, sort_by_parameter_order=True)
_INSERT_ID = insert(_DEPLOYMENTS).returning(_DEPLOYMENTS.c.id)
_COLUMNS = [c for c in _DEPLOYMENTS.c if not c.primary_key]
assert not any(c.server_default is not None for c in _COLUMNS), "insert_many_returning needs every default"


def _complete(values: dict) -> dict:
    """Every column's value of a new deployment: the given ones, the defaults for the rest."""
    row = {}
    for column in _COLUMNS:
        if column.key in values:
            row[column.key] = values[column.key]
        elif column.default is None:
            row[column.key] = None
        elif column.default.is_callable:
            row[column.key] = column.default.arg(None)
        else:
            row[column.key] = column.default.arg
    return row


def insert_many_returning(session: Session, values: list[dict]) -> list[Deployment]:
    """`insert_returning` for several deployments in one statement, in the order of `values`."""
    rows = [_complete(v) for v in values]
    connection = session.connection()
    if len(rows) == 1:
        ids = [connection.execute(_INSERT_ID, rows[0]).scalar_one()]
    else:
        ids = list(connection.execute(_INSERT_IDS, rows).scalars())
    return [Deployment(id=deployment_id, **row) for deployment_id, row in zip(ids, rows)]


_NEWER = _DEPLOYMENTS.alias("newer")
_OLDER = _DEPLOYMENTS.alias("older")
_JOBS = Job.__table__
# For each deployment in :newer, its app's queued deployments older than it. A group of creates has
# one deployment per app, so each older one belongs to exactly one of them.
_END_QUEUED_JOBS_BEFORE_EACH = (
    update(_JOBS)
    .where(_JOBS.c.deployment_id.in_(
        select(_OLDER.c.id)
        .join(_NEWER, (_NEWER.c.app_id == _OLDER.c.app_id) & (_OLDER.c.id < _NEWER.c.id))
        .where(_NEWER.c.id.in_(bindparam("newer", expanding=True)), _OLDER.c.state == State.QUEUED)))
    .values(status="done", lease_until=None)
    .returning(_JOBS.c.deployment_id, _JOBS.c.app_id))
_SUPERSEDE_ONE = (update(_DEPLOYMENTS).where(_DEPLOYMENTS.c.id == bindparam("older"))
                  .values(state=str(State.SUPERSEDED), superseded_by_id=bindparam("by"), finished_at=bindparam("at")))


def supersede_queued_before_each(session: Session, newer: dict[int, int], finished_at) -> dict[int, list[int]]:
    """Ends the queued deployments older than a new one, and their jobs, for several apps at once:
    `newer` maps an app id to its new deployment (at most one per app). Two statements: the jobs'
    rows first, then the deployments' (the order a worker's writes lock them). Returns {new
    deployment: the ids it ended, oldest first}; their rows stay locked (PostgreSQL) until the
    caller commits."""
    if not newer:
        return {}
    connection = session.connection()
    ended: dict[int, list[int]] = {}
    for deployment_id, app_id in connection.execute(_END_QUEUED_JOBS_BEFORE_EACH, {"newer": sorted(newer.values())}):
        ended.setdefault(newer[app_id], []).append(deployment_id)
    rows = []
    for by, ids in ended.items():
        ids.sort()
        rows += [{"older": older, "by": by, "at": finished_at} for older in ids]
    if rows:
        connection.execute(_SUPERSEDE_ONE, rows)
    return ended


def queue_position(session: Session, app_id: int, deployment_id: int) -> int:
    """1-based place of a queued deployment in its app's queue (`queue_positions` for one)."""
    return (session.scalar(_QUEUE_POSITION, {"app_id": app_id, "before": deployment_id}) or 0) + 1
