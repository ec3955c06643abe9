"""Queries for apps and servers. The only place that builds SQL for them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.db.models import App, Server


def get_app(session: Session, name: str) -> App | None:
    return session.scalar(select(App).where(App.name == name))


def list_apps(session: Session, *, after: str, limit: int) -> list[App]:
    return list(session.scalars(select(App).where(App.name > after).order_by(App.name).limit(limit)))


def get_server(session: Session, name: str) -> Server | None:
    return session.scalar(select(Server).where(Server.name == name))


def list_servers(session: Session, *, after: str, limit: int) -> list[Server]:
    return list(session.scalars(select(Server).where(Server.name > after).order_by(Server.name).limit(limit)))


def server_by_join_token(session: Session, digest: str) -> Server | None:
    if not digest:
        return None
    return session.scalar(select(Server).where(Server.join_token_hash == digest))
