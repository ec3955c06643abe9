"""What an app is doing, as users see it: derived from its deployments, never stored twice."""

from __future__ import annotations

from services.apps import repository as repo
from services.core.states import State
from services.db.models import App, Deployment
from services.db.session import Database


def derive(app: App, latest: Deployment | None, active: bool) -> str:
    if active:
        return "DEPLOYING"
    if latest is not None and latest.state == State.FAILED:
        return "FAILED"
    return "RUNNING" if app.current_deployment_id else "NEW"


def overview(db: Database, apps: list[App]) -> dict[int, tuple[str, Deployment | None]]:
    """Per app id: (status, the serving deployment or None)."""
    with db.read() as s:
        facts = repo.deployment_facts(s, apps)
    return {a.id: (derive(a, facts.latest_finished.get(a.id), a.id in facts.active), facts.serving.get(a.id))
            for a in apps}
