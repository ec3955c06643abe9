"""Certificate policy (pure): when a domain's certificate is due, how long a failure waits.

- A certificate is renewed at two thirds of its lifetime (Let's Encrypt's 90 days: at day 60),
  so a failing renewal has a third of the lifetime to succeed before anything expires.
- A failure waits `base * 2**(failures-1)` seconds, capped; a rate limit waits at least
  `RATE_LIMIT_SECONDS` (the CA said so: asking again soon only makes it worse). An attempt is
  never made before its `next_attempt`, so nothing is retried in a tight loop.
- An uploaded certificate is the user's: never issued over, never renewed by the agent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

RENEW_FRACTION = 2 / 3
RATE_LIMIT_SECONDS = 3600.0
DEFAULT_RETRY_BASE = 60.0
DEFAULT_RETRY_MAX = 24 * 3600.0

# Names no public CA issues for: asking Let's Encrypt for them only burns its rate limit.
RESERVED_SUFFIXES = (".localhost", ".test", ".example", ".invalid", ".local", ".internal")

SOURCE_ACME = "acme"
SOURCE_UPLOAD = "upload"

# What a domain's certificate is doing.
PENDING = "pending"      # wanted, no certificate yet, an attempt is due or running
ISSUED = "issued"        # a certificate is in service (it may be renewing)
FAILED = "failed"        # the last attempt failed; served over HTTP until one succeeds
UPLOADED = "uploaded"    # the user's own certificate is in service
SKIPPED = "skipped"      # never issued (a name the configured CA cannot certify, or ACME off)


@dataclass(frozen=True)
class DomainStatus:
    """One domain's certificate as the agent reports it: no key material."""

    domain: str
    app: str
    state: str = PENDING
    source: str = SOURCE_ACME
    issuer: str = ""
    serial: str = ""
    not_before: float = 0.0  # unix seconds; 0 when no certificate
    not_after: float = 0.0
    last_error: str = ""
    next_attempt: float = 0.0  # unix seconds; 0 when nothing is scheduled
    failures: int = 0
    renewals: int = 0

    @property
    def has_cert(self) -> bool:
        return self.not_after > 0

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "DomainStatus":
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})


def renew_at(not_before: float, not_after: float) -> float:
    """When a certificate valid from `not_before` to `not_after` is renewed."""
    return not_before + (not_after - not_before) * RENEW_FRACTION


def retry_delay(failures: int, base: float = DEFAULT_RETRY_BASE,
                cap: float = DEFAULT_RETRY_MAX, rate_limited: bool = False) -> float:
    """Seconds to wait after the `failures`-th failure in a row (exponential, capped)."""
    delay = min(cap, base * (2 ** max(0, failures - 1)))
    return max(delay, RATE_LIMIT_SECONDS) if rate_limited else delay


def reserved_name(domain: str) -> bool:
    return any(domain == s[1:] or domain.endswith(s) for s in RESERVED_SUFFIXES)


def wanted(status: DomainStatus | None, domain: str, app: str, now: float) -> DomainStatus:
    """The status of a domain an app asks for: a new one is due now; a known one keeps its
    certificate and schedule (moving to another app changes only the owner)."""
    if status is None:
        return DomainStatus(domain=domain, app=app, next_attempt=now)
    return replace(status, app=app)


def due(status: DomainStatus, now: float) -> bool:
    """Whether the agent should ask the CA for this domain now."""
    if status.source == SOURCE_UPLOAD or status.state == SKIPPED:
        return False
    return status.next_attempt > 0 and now >= status.next_attempt


def after_success(status: DomainStatus, *, issuer: str, serial: str, not_before: float,
                  not_after: float) -> DomainStatus:
    return replace(status, state=ISSUED, source=SOURCE_ACME, issuer=issuer, serial=serial,
                   not_before=not_before, not_after=not_after, last_error="", failures=0,
                   renewals=status.renewals + (1 if status.has_cert else 0),
                   next_attempt=renew_at(not_before, not_after))


def after_failure(status: DomainStatus, error: str, now: float, *, rate_limited: bool = False,
                  base: float = DEFAULT_RETRY_BASE, cap: float = DEFAULT_RETRY_MAX) -> DomainStatus:
    """A failed attempt: the error kept, the next one later. A certificate still valid stays in
    service (state ISSUED, the error shown beside it); without one the domain is FAILED."""
    failures = status.failures + 1
    delay = retry_delay(failures, base, cap, rate_limited)
    if status.has_cert and status.not_after > now:
        # Never schedule past the expiry when a retry could still save it.
        delay = min(delay, max(base, (status.not_after - now) / 2))
    return replace(status, state=ISSUED if status.has_cert and status.not_after > now else FAILED,
                   last_error=error, failures=failures, next_attempt=now + delay)


def uploaded(status: DomainStatus | None, domain: str, app: str, *, issuer: str, serial: str,
             not_before: float, not_after: float) -> DomainStatus:
    base = status or DomainStatus(domain=domain, app=app)
    return replace(base, app=app, state=UPLOADED, source=SOURCE_UPLOAD, issuer=issuer,
                   serial=serial, not_before=not_before, not_after=not_after, last_error="",
                   failures=0, next_attempt=0.0)


def skipped(status: DomainStatus, reason: str) -> DomainStatus:
    return replace(status, state=SKIPPED, last_error=reason, next_attempt=0.0)
