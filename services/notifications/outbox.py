"""The outbox: one row per URL, written in the same transaction that ends the deployment, or that
records an app going down or coming back (services.health).

Writing with the outcome (not after it) means a crash can never lose a notification; the
sender delivers at least once, and receivers de-duplicate by X-Serversinc-Delivery.
"""

from __future__ import annotations

import json

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from common.names import deployment_name
from services.core.states import State
from services.db.models import App, Deployment, Notification, utcnow

# Which outcomes are announced.
ANNOUNCED = {State.SUCCEEDED: "deployment.succeeded", State.FAILED: "deployment.failed"}


def payload(app: App, dep: Deployment, state: State) -> dict:
    """Slack-compatible: Slack shows "text"; other receivers read the structured fields."""
    sha = (dep.commit_sha or "")[:12]
    if state == State.SUCCEEDED:
        text = f":white_check_mark: {app.name} deployed {sha} ({dep.commit_message.splitlines()[0] if dep.commit_message else ''}) — {dep.url}"
    else:
        text = f":x: {app.name} deployment {dep.id} failed at {dep.failure_phase.lower()}: {dep.failure_reason.splitlines()[0] if dep.failure_reason else ''}"
    return {
        "text": text,
        "event": ANNOUNCED[state],
        "app": app.name,
        "deployment": {
            "name": deployment_name(app.name, dep.id), "state": str(state), "commit_sha": dep.commit_sha,
            "commit_message": dep.commit_message, "image": dep.image, "url": dep.url,
            "failure_phase": dep.failure_phase, "failure_reason": dep.failure_reason,
            "build_seconds": dep.build_seconds, "deploy_seconds": dep.deploy_seconds,
            "trigger": dep.trigger,
        },
    }


def enqueue(session: Session, dep: Deployment, state: State) -> int:
    """Adds the app's notifications for this outcome in the caller's transaction; returns how many."""
    if state not in ANNOUNCED:
        return 0
    app = dep.app
    body = json.dumps(payload(app, dep, state), sort_keys=True)
    for url in app.notify_urls or []:
        session.add(Notification(deployment_id=dep.id, url=url, body=body, next_attempt_at=utcnow()))
    return len(app.notify_urls or [])


def health_payload(app: App, dep: Deployment, event: str, detail: str) -> dict:
    """An app went down ("app.down"), serves again ("app.recovered") or was OOM-killed ("app.oom"):
    the release it is about."""
    sha = (dep.commit_sha or "")[:12]
    if event == "app.oom":
        text = f":boom: {app.name} ({sha}): {detail.splitlines()[0] if detail else 'OOM-killed'}"
    elif event == "app.down":
        text = f":red_circle: {app.name} is down ({sha}): {detail.splitlines()[0] if detail else 'nothing healthy serves'}"
    else:
        text = f":large_green_circle: {app.name} is serving again ({sha}) — {app.url}"
    return {
        "text": text,
        "event": event,
        "app": app.name,
        "detail": detail,
        "deployment": {"name": deployment_name(app.name, dep.id), "commit_sha": dep.commit_sha, "url": app.url},
    }


def enqueue_health(session: Session, app: App | None, deployment_id: int, event: str, detail: str,
                   **extra) -> int:
    """Adds the app's notifications for a change of health in the caller's transaction; returns how
    many. `extra` fields join the payload (app.oom: "oom" with the kill count and time)."""
    dep = session.get(Deployment, deployment_id)
    if app is None or dep is None or not app.notify_urls:
        return 0
    body = json.dumps({**health_payload(app, dep, event, detail), **extra}, sort_keys=True)
    for url in app.notify_urls:
        session.add(Notification(deployment_id=dep.id, url=url, body=body, next_attempt_at=utcnow()))
    return len(app.notify_urls)


def claim_due(session: Session, hold_until, limit: int = 20) -> list[Notification]:
    """Takes up to `limit` due notifications for this sender: each is not due again before
    `hold_until`, so a second sender (another replica) does not post it too. The sender records
    the outcome after posting; one that dies first leaves the row to be retried at `hold_until`.
    On PostgreSQL two senders claiming at once skip each other's rows (SKIP LOCKED); on SQLite
    the write transaction serializes them."""
    q = (select(Notification).where(Notification.status == "pending", Notification.next_attempt_at <= utcnow())
         .order_by(Notification.next_attempt_at).limit(limit))
    if session.bind.dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    rows = list(session.scalars(q))
    for row in rows:
        row.next_attempt_at = hold_until
    return rows


def next_due(session: Session):
    q = select(Notification.next_attempt_at).where(Notification.status == "pending").order_by(Notification.next_attempt_at).limit(1)
    return session.scalar(q)


def record(session: Session, notification_id: int, **fields) -> None:
    session.execute(update(Notification).where(Notification.id == notification_id).values(**fields))


def app_of(session: Session, deployment_id: int) -> App | None:
    """The app a notification speaks for (its secret signs the delivery)."""
    dep = session.get(Deployment, deployment_id)
    return dep.app if dep is not None else None
