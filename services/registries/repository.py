"""Queries for registries: the only place that builds SQL for the registries table."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.db.models import Registry


def get(session: Session, address: str) -> Registry | None:
    return session.scalar(select(Registry).where(Registry.address == address))


def list_all(session: Session, *, after: str = "", limit: int = 1000) -> list[Registry]:
    return list(session.scalars(
        select(Registry).where(Registry.address > after).order_by(Registry.address).limit(limit)))


def delete(session: Session, registry: Registry) -> None:
    session.delete(registry)
