"""Control-plane settings: the defaults table of DESIGN.md, each overridable by an environment variable.

The addresses and the state folder come from common.defaults, which the clients and the agent read too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from common.defaults import (
    AGENT_ENV,
    API_ENV,
    API_LISTEN_ENV,
    DEFAULT_AGENT,
    DEFAULT_API,
    DEFAULT_METRICS,
    DEFAULT_WEBHOOK,
    METRICS_ENV,
    TOKEN_FILE,
    serversinc_home,
)
from common.api_tls import plaintext_requested

LOCAL_SERVER = "local"


@dataclass
class Settings:
    """What the control plane needs to run; `from_env` reads the environment once."""

    home: Path
    database_url: str
    api_address: str = DEFAULT_API
    # The agent the "local" server points at; created at start-up when missing.
    local_agent_address: str = DEFAULT_AGENT
    # Worker threads: deployments of different apps run in parallel, one per app at a time.
    workers: int = 4
    # How long a claimed job stays claimed without a heartbeat before another worker may take it.
    job_lease_seconds: float = 30.0
    # Phase deadlines (seconds); per-app values override build and health.
    resolve_timeout: float = 30.0
    build_timeout: float = 900.0
    # How long a build may wait for a build slot on its server (other builds hold them) before it
    # fails; the wait does not count against the build timeout (services.agents.build_deadline).
    build_slot_wait: float = 3600.0
    health_timeout: int = 30
    # Start + switch + stop-old, beyond the health timeout.
    deploy_margin: float = 60.0
    stop_grace: int = 10
    # Mutual TLS to agents with the certificates in certs_dir (scripts/certs.py makes them).
    agent_tls: bool = True
    # Plaintext gRPC on the API instead of TLS with certs_dir's api.pem (SERVERSINC_API_PLAINTEXT=1 or
    # serversinc-api --plaintext): explicit only, and logged as a warning at start (common.api_tls).
    api_plaintext: bool = False
    # The local agent's secret when it was not enrolled through a join token (tests, dev).
    local_agent_secret: str = field(default="", repr=False)
    # Prometheus /metrics on loopback; "" turns it off, port 0 picks a free one.
    metrics_address: str = DEFAULT_METRICS
    # First retry of a failed notification after this many seconds, doubling each time.
    notify_backoff_seconds: float = 2.0
    # Seconds between two polls of every server's containers by the health monitor.
    health_poll_seconds: float = 5.0
    # Event retention (services.retention.events): an app's last M deployments keep their events
    # (their stored log); older ones keep their row. Swept every event_retention_period_seconds (0: never).
    event_retention_deployments: int = 50
    event_retention_period_seconds: float = 600.0
    # Where GitHub reaches the webhook bridge (the public URL behind any proxy).
    webhook_url: str = f"http://{DEFAULT_WEBHOOK}"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def certs_dir(self) -> Path:
        """The platform CA and the certificates from it: the agents' mutual TLS and the API's own TLS."""
        return self.home / "certs"

    @property
    def token_file(self) -> Path:
        """Where the admin API token is written at first start, for the clients on this machine."""
        return self.home / TOKEN_FILE

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        home = Path(overrides.pop("home", None) or serversinc_home())
        # Empty counts as unset (docker-compose.yml passes an empty value for the embedded SQLite).
        url = overrides.pop("database_url", None) or os.environ.get("SERVERSINC_DATABASE_URL") or (
            f"sqlite:///{home / 'serversinc.db'}"
        )
        settings = cls(
            home=home,
            database_url=url,
            api_address=os.environ.get(API_LISTEN_ENV) or os.environ.get(API_ENV, DEFAULT_API),
            local_agent_address=os.environ.get(AGENT_ENV, DEFAULT_AGENT),
            workers=int(os.environ.get("SERVERSINC_WORKERS", "4")),
            job_lease_seconds=float(os.environ.get("SERVERSINC_JOB_LEASE_SECONDS", "30")),
            build_slot_wait=float(os.environ.get("SERVERSINC_BUILD_SLOT_WAIT_SECONDS", "3600")),
            webhook_url=os.environ.get("SERVERSINC_WEBHOOK_URL", f"http://{DEFAULT_WEBHOOK}"),
            agent_tls=os.environ.get("SERVERSINC_AGENT_TLS", "on").lower() not in ("off", "0", "false", "no"),
            local_agent_secret=os.environ.get("SERVERSINC_AGENT_SECRET", ""),
            api_plaintext=plaintext_requested(os.environ),
            metrics_address=os.environ.get(METRICS_ENV, DEFAULT_METRICS),
            health_poll_seconds=float(os.environ.get("SERVERSINC_HEALTH_POLL_SECONDS", "5")),
            event_retention_deployments=int(os.environ.get("SERVERSINC_EVENT_RETENTION_DEPLOYMENTS", "50")),
            event_retention_period_seconds=float(os.environ.get("SERVERSINC_EVENT_RETENTION_PERIOD_SECONDS", "600")),
        )
        for key, value in overrides.items():
            setattr(settings, key, value)
        return settings
