"""What an app is doing, as users see it: derived from its deployments and the health monitor's
last observation, never stored twice.

Invariant: the status speaks for what serves. A release that serves stays RUNNING (or DEGRADED /
DOWN, as the monitor saw its containers) whatever later deployments did; a failed one is flagged
beside it (AppView.latest), and FAILED means that nothing serves and the last deployment failed.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.apps import repository as repo
from services.core.states import State
from services.certificates import repository as certificates_repo
from services.db.models import App, AppCertificate, AppHealth, Deployment
from services.db.session import Database
from services.health.assess import Health


@dataclass(frozen=True)
class AppView:
    status: str
    # The serving deployment, the newest finished one, and the monitor's record of the serving one.
    serving: Deployment | None
    latest: Deployment | None
    health: AppHealth | None
    # Each domain's certificate as the app's server last reported it.
    certificates: tuple[AppCertificate, ...] = ()

    @property
    def latest_failed(self) -> bool:
        return self.latest is not None and self.latest.state == State.FAILED


def derive(app: App, latest: Deployment | None, active: bool, health: AppHealth | None = None) -> str:
    if active:
        return "DEPLOYING"
    if not app.current_deployment_id:
        return "FAILED" if latest is not None and latest.state == State.FAILED else "NEW"
    if health is not None and health.deployment_id == app.current_deployment_id and health.health in (Health.DEGRADED, Health.DOWN):
        return str(health.health)
    return "RUNNING"


def overview(db: Database, apps: list[App]) -> dict[int, AppView]:
    """Per app id, what it is doing; one read of the database, no call to any agent."""
    with db.read() as s:
        facts = repo.deployment_facts(s, apps)
        certificates = certificates_repo.of_apps(s, [a.id for a in apps])
    views = {}
    for a in apps:
        health = facts.health.get(a.id)
        if health is not None and health.deployment_id != a.current_deployment_id:
            health = None  # about an older release
        latest = facts.latest_finished.get(a.id)
        views[a.id] = AppView(derive(a, latest, a.id in facts.active, health), facts.serving.get(a.id), latest, health,
                              tuple(certificates.get(a.id, ())))
    return views
