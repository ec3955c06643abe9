"""Queries for the certificate read model: the only place that builds SQL for app_certificates.

A report replaces an app's rows whole: a domain the agent no longer lists is gone here too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from services.db.models import App, AppCertificate


@dataclass(frozen=True)
class CertificateView:
    """One domain's certificate as an agent reported it (never key material)."""

    app: str
    domain: str
    state: str  # PENDING, ISSUED, FAILED, UPLOADED, SKIPPED
    issuer: str = ""
    serial: str = ""
    not_before: datetime | None = None
    not_after: datetime | None = None
    last_error: str = ""
    next_attempt_at: datetime | None = None
    uploaded: bool = False


def replace_reported(session: Session, app_ids: dict[str, int], reported: Iterable[CertificateView],
                     now: datetime) -> None:
    """Store what one server reported for its apps (`app_ids`: name -> id of the apps it runs)."""
    by_app: dict[int, list[CertificateView]] = defaultdict(list)
    for view in reported:
        if view.app in app_ids:
            by_app[app_ids[view.app]].append(view)
    ids = list(app_ids.values())
    if not ids:
        return
    session.execute(delete(AppCertificate).where(AppCertificate.app_id.in_(ids)))
    for app_id, views in by_app.items():
        for v in views:
            session.add(AppCertificate(
                app_id=app_id, domain=v.domain, state=v.state, issuer=v.issuer, serial=v.serial,
                not_before=v.not_before, not_after=v.not_after, last_error=v.last_error,
                next_attempt_at=v.next_attempt_at, uploaded=v.uploaded, observed_at=now))


def of_apps(session: Session, app_ids: Iterable[int]) -> dict[int, list[AppCertificate]]:
    out: dict[int, list[AppCertificate]] = defaultdict(list)
    rows = session.scalars(select(AppCertificate).where(AppCertificate.app_id.in_(list(app_ids)))
                           .order_by(AppCertificate.app_id, AppCertificate.domain))
    for row in rows:
        out[row.app_id].append(row)
    return dict(out)


def all_with_apps(session: Session) -> list[tuple[str, AppCertificate]]:
    """Every stored certificate with its app's name (for /metrics)."""
    q = (select(App.name, AppCertificate).join(App, App.id == AppCertificate.app_id)
         .order_by(App.name, AppCertificate.domain))
    return [(name, row) for name, row in session.execute(q)]
