"""Queries for apps and servers, and the app's read model of its deployments.

The only place that builds SQL for apps and servers. The read model (`has_deployment_in`,
`deployment_facts`) reads the deployments and app_health tables directly so that apps never import the deployments
package: deployments depend on apps, not the other way round.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from services.core.states import State
from services.db.models import App, AppHealth, AppServer, Deployment, Server


# Built once: every deployment create looks its app up, and building the select cost more than running it.
_APP_BY_NAME = select(App).where(App.name == bindparam("name"))


def get_app(session: Session, name: str) -> App | None:
    return session.scalar(_APP_BY_NAME, {"name": name})


def list_apps(session: Session, *, after: str, limit: int) -> list[App]:
    return list(session.scalars(select(App).where(App.name > after).order_by(App.name).limit(limit)))


def get_server(session: Session, name: str) -> Server | None:
    return session.scalar(select(Server).where(Server.name == name))


def list_servers(session: Session, *, after: str, limit: int) -> list[Server]:
    return list(session.scalars(select(Server).where(Server.name > after).order_by(Server.name).limit(limit)))


def app_server_names(session: Session, app_id: int) -> list[str]:
    """The app's servers in rollout order (position 0 is apps.server_id)."""
    q = (select(Server.name).join(AppServer, AppServer.server_id == Server.id)
         .where(AppServer.app_id == app_id).order_by(AppServer.position))
    return list(session.scalars(q))


def server_names_by_app(session: Session, app_ids: Iterable[int]) -> dict[int, list[str]]:
    """Each app's servers in rollout order, for many apps in one query."""
    q = (select(AppServer.app_id, Server.name).join(Server, AppServer.server_id == Server.id)
         .where(AppServer.app_id.in_(list(app_ids))).order_by(AppServer.app_id, AppServer.position))
    result: dict[int, list[str]] = {}
    for app_id, name in session.execute(q):
        result.setdefault(app_id, []).append(name)
    return result


def serving_outcomes(session: Session, app: App) -> list | None:
    """The server_outcomes of the app's serving deployment; None when nothing serves."""
    if not app.current_deployment_id:
        return None
    return list(session.scalar(select(Deployment.server_outcomes).where(Deployment.id == app.current_deployment_id)) or [])


def set_app_servers(session: Session, app: App, servers: list[Server]) -> None:
    """Points the app at `servers` in rollout order: apps.server_id and app_servers in the
    caller's one transaction (position 0 == apps.server_id), never one without the other."""
    app.server = servers[0]
    session.flush()
    session.execute(delete(AppServer).where(AppServer.app_id == app.id))
    session.add_all(AppServer(app_id=app.id, server_id=server.id, position=i) for i, server in enumerate(servers))
    session.flush()


def apps_on_server(session: Session, server_id: int) -> list[str]:
    """Names of the apps that run on a server (any position, or as apps.server_id)."""
    listed = select(AppServer.app_id).where(AppServer.server_id == server_id)
    q = select(App.name).where((App.id.in_(listed)) | (App.server_id == server_id)).order_by(App.name)
    return list(session.scalars(q))


def mark_servers_seen(session: Session, names: Iterable[str], when) -> None:
    """One UPDATE for every server whose agent just answered."""
    names = list(names)
    if names:
        session.execute(update(Server).where(Server.name.in_(names)).values(last_seen_at=when))


def server_by_join_token(session: Session, digest: str) -> Server | None:
    if not digest:
        return None
    return session.scalar(select(Server).where(Server.join_token_hash == digest))


def has_deployment_in(session: Session, app_id: int, states: Iterable[State]) -> bool:
    q = select(Deployment.id).where(Deployment.app_id == app_id, Deployment.state.in_([str(s) for s in states]))
    return session.scalar(q.limit(1)) is not None


@dataclass(frozen=True)
class DeploymentFacts:
    """Per app id: its newest finished deployment, whether one is queued or running, the serving one,
    and the health monitor's record."""

    latest_finished: dict[int, Deployment]
    active: set[int]
    serving: dict[int, Deployment]
    health: dict[int, AppHealth]


def deployment_facts(session: Session, apps: Iterable[App]) -> DeploymentFacts:
    apps = list(apps)
    ids = [a.id for a in apps]
    newest = (
        select(func.max(Deployment.id))
        .where(Deployment.app_id.in_(ids), Deployment.state.in_([State.SUCCEEDED, State.FAILED, State.CANCELLED]))
        .group_by(Deployment.app_id)
    )
    latest = {d.app_id: d for d in session.scalars(select(Deployment).where(Deployment.id.in_(newest)))}
    active = set(
        session.scalars(
            select(Deployment.app_id).where(Deployment.app_id.in_(ids), Deployment.state.in_([State.QUEUED, State.RUNNING]))
        )
    )
    serving_ids = [a.current_deployment_id for a in apps if a.current_deployment_id]
    serving = {d.app_id: d for d in session.scalars(select(Deployment).where(Deployment.id.in_(serving_ids)))}
    health = {h.app_id: h for h in session.scalars(select(AppHealth).where(AppHealth.app_id.in_(ids)))}
    return DeploymentFacts(latest, active, serving, health)


def any_stored_secret(session: Session) -> str | None:
    """One encrypted value of those the control plane stores (an agent's secret, an app's webhook
    secret), or None while nothing is stored: enough to tell whether a key can read them."""
    for column in (Server.agent_secret, App.webhook_secret):
        value = session.scalar(select(column).where(column != "").limit(1))
        if value:
            return value
    return None
