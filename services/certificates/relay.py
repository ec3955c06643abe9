"""The certificate relay: what each server's agent says about its domains' certificates, stored.

Runs inside the health monitor's round (same servers, same deadline, same pool), so no API call
ever waits on an agent for it: GetApp and /metrics read the stored rows. A server that does not
answer keeps its last report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from services.certificates import repository as repo
from services.certificates.repository import CertificateView
from services.db.models import utcnow
from services.db.session import Database

log = logging.getLogger(__name__)

CertificatesOf = Callable[[str, float], list[CertificateView]]


def store_report(db: Database, app_ids: dict[str, int], reported: list[CertificateView]) -> None:
    with db.session() as s:
        repo.replace_reported(s, app_ids, reported, utcnow())


def relay(db: Database, certificates_of: CertificatesOf, server: str, app_ids: dict[str, int],
          timeout: float) -> bool:
    """Ask `server` and store its answer; False (and the last report kept) when it did not answer."""
    try:
        reported = certificates_of(server, timeout)
    except Exception as err:  # unreachable, refused, an agent without HTTPS: keep the last report
        log.info("certificates: server %s did not answer: %s", server, err)
        return False
    try:
        store_report(db, app_ids, reported)
    except Exception as err:  # another replica stored the same report at the same moment
        log.info("certificates: storing server %s's report failed (%s); the next round stores it", server, err)
        return False
    return True


@dataclass(frozen=True)
class CertificateMetric:
    app: str
    domain: str
    state: str
    not_after: float
    failing: bool


def metric_rows(db: Database) -> list[CertificateMetric]:
    """The read model as /metrics shows it (services.observability.metrics)."""
    with db.read() as s:
        rows = repo.all_with_apps(s)
    return [CertificateMetric(app, c.domain, c.state, c.not_after.timestamp() if c.not_after else 0.0,
                              bool(c.last_error)) for app, c in rows]


def certificates_of(agents) -> CertificatesOf:
    """`certificates_of(server, timeout)` over an AgentDirectory, for the health monitor."""
    return lambda server, timeout: agents.for_server(server).list_certificates(timeout=timeout)
