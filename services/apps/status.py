"""What an app is doing, as users see it: derived from its deployments, never stored twice."""

from __future__ import annotations

from services.core.states import State
from services.db.models import App, Deployment
from services.db.session import Database
from services.deployments import repository as deployments


def derive(app: App, latest: Deployment | None, active: bool) -> str:
    if active:
        return "DEPLOYING"
    if latest is not None and latest.state == State.FAILED:
        return "FAILED"
    return "RUNNING" if app.current_deployment_id else "NEW"


def overview(db: Database, apps: list[App]) -> dict[int, tuple[str, Deployment | None]]:
    """Per app id: (status, the serving deployment or None)."""
    with db.read() as s:
        latest, active = deployments.latest_finished_and_active(s, [a.id for a in apps])
        current = {a.id: deployments.get(s, a.current_deployment_id) for a in apps if a.current_deployment_id}
    return {a.id: (derive(a, latest.get(a.id), a.id in active), current.get(a.id)) for a in apps}
