"""SQLAlchemy 2 typed models for apps, deployments, their events, the job queue, servers and app health."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, MetaData, String, Text, TypeDecorator, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from common.rules import DRAIN_SECONDS, HEALTH

# Stable constraint names, so migrations can name what they change.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Stores UTC and always returns timezone-aware datetimes (SQLite keeps no zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return value.replace(tzinfo=timezone.utc) if value is not None else None


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON}


class Server(Base):
    """A server running a Tugboat agent."""

    __tablename__ = "servers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    address: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The secret its agent requires, encrypted (SecretBox); empty until the agent registers.
    agent_secret: Mapped[str] = mapped_column(Text, default="")
    # One-time join token: only its SHA-256 is kept.
    join_token_hash: Mapped[str] = mapped_column(String(64), default="")
    join_token_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    join_token_used_at: Mapped[datetime | None] = mapped_column(default=None)
    registered_at: Mapped[datetime | None] = mapped_column(default=None)
    # When the control plane last reached its agent (a call that answered); None: never.
    last_seen_at: Mapped[datetime | None] = mapped_column(default=None)
    # The agent's serving certificate as the platform CA last signed it (enrollment, rotation).
    cert_serial: Mapped[str] = mapped_column(String(64), default="")
    cert_not_after: Mapped[datetime | None] = mapped_column(default=None)


class ApiToken(Base):
    """A control-plane API credential; only the SHA-256 of its secret is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)


class App(Base):
    __tablename__ = "apps"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    repo_url: Mapped[str] = mapped_column(String(2048))
    branch: Mapped[str] = mapped_column(String(255))
    port: Mapped[int]
    health_path: Mapped[str] = mapped_column(String(1024))
    dockerfile: Mapped[str] = mapped_column(String(1024))
    context_dir: Mapped[str] = mapped_column(String(1024))
    env: Mapped[dict[str, Any]] = mapped_column(default=dict)
    server_id: Mapped[int] = mapped_column(ForeignKey("servers.id"))
    health_timeout_seconds: Mapped[int] = mapped_column(default=0)
    build_timeout_seconds: Mapped[int] = mapped_column(default=0)
    stop_grace_seconds: Mapped[int] = mapped_column(default=0)
    health_check_mode: Mapped[str] = mapped_column(String(16), default="HTTP")
    health_status_min: Mapped[int] = mapped_column(default=HEALTH.status_min)
    health_status_max: Mapped[int] = mapped_column(default=HEALTH.status_max)
    health_interval_ms: Mapped[int] = mapped_column(default=HEALTH.interval_ms)
    health_probe_timeout_ms: Mapped[int] = mapped_column(default=HEALTH.probe_timeout_ms)
    healthy_threshold: Mapped[int] = mapped_column(default=HEALTH.healthy_threshold)
    stop_signal: Mapped[str] = mapped_column(String(16), default="SIGTERM")
    drain_seconds: Mapped[int] = mapped_column(default=DRAIN_SECONDS)
    domains: Mapped[list[Any]] = mapped_column(JSON, default=list)
    https_redirect: Mapped[bool] = mapped_column(default=False)
    hsts_max_age_seconds: Mapped[int] = mapped_column(default=0)
    # How the containers run (common.runtime_rules): limits (0: none), volumes as [name, path]
    # pairs, the release command's argv, and how many successful releases keep their image.
    memory_limit_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    cpu_limit_millis: Mapped[int] = mapped_column(default=0)
    volumes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    exclusive_volumes: Mapped[bool] = mapped_column(default=False)
    release_command: Mapped[list[Any]] = mapped_column(JSON, default=list)
    retain_releases: Mapped[int] = mapped_column(default=5)
    # How many containers of each release run, spread over the app's servers (app_servers).
    replicas: Mapped[int] = mapped_column(default=1)
    # Maintenance mode, as last applied on the app's server (SetAppMaintenance).
    maintenance: Mapped[bool] = mapped_column(default=False)
    maintenance_message: Mapped[str] = mapped_column(Text, default="")
    # Signs GitHub deliveries for this app (X-Hub-Signature-256); encrypted (SecretBox).
    webhook_secret: Mapped[str] = mapped_column(Text, default="")
    # Secret environment variables as one encrypted JSON object (SecretBox); never in clear.
    secret_env: Mapped[str] = mapped_column(Text, default="")
    notify_urls: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Signs outgoing notifications; encrypted (SecretBox).
    notification_secret: Mapped[str] = mapped_column(Text, default="")
    # What serves now: set when a deployment succeeds.
    url: Mapped[str] = mapped_column(String(2048), default="")
    current_deployment_id: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    server: Mapped[Server] = relationship(lazy="joined")


class AppServer(Base):
    """One of the servers an app runs on, in rollout order. Position 0 is `apps.server_id` (the
    server that builds the app's image); the two are written together, never one alone."""

    __tablename__ = "app_servers"

    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    server_id: Mapped[int] = mapped_column(ForeignKey("servers.id"), primary_key=True)
    position: Mapped[int] = mapped_column(default=0)


class Deployment(Base):
    __tablename__ = "deployments"
    __table_args__ = (Index("ix_deployments_app_id_id", "app_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16), index=True)
    phase: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(String(16))
    rebuild: Mapped[bool] = mapped_column(default=False)
    requested_commit_sha: Mapped[str] = mapped_column(String(40), default="")
    # The branch's previous head named by the push that asked for this commit (GitHub's `before`):
    # the push order the older-commit rule reads (services.deployments.pushes).
    before_commit_sha: Mapped[str] = mapped_column(String(40), default="")
    source_deployment_id: Mapped[int | None] = mapped_column(Integer, default=None)
    commit_sha: Mapped[str] = mapped_column(String(40), default="")
    commit_message: Mapped[str] = mapped_column(Text, default="")
    image: Mapped[str] = mapped_column(String(255), default="")
    image_id: Mapped[str] = mapped_column(String(255), default="")
    build_skipped: Mapped[bool] = mapped_column(default=False)
    build_seconds: Mapped[float] = mapped_column(default=0.0)
    deploy_seconds: Mapped[float] = mapped_column(default=0.0)
    # [{"phase": "BUILD", "start": iso, "end": iso|None}, ...]; an exclusive-volumes deploy's
    # SWITCH entry also has "unserved_seconds" (Recorder.note_unserved).
    phase_timings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    failure_phase: Mapped[str] = mapped_column(String(16), default="")
    failure_reason: Mapped[str] = mapped_column(Text, default="")
    container_id: Mapped[str] = mapped_column(String(128), default="")
    url: Mapped[str] = mapped_column(String(2048), default="")
    # What ran: image, image_id, commit, env, port, health and stop settings.
    release: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # The registry digest every server ran ("" when the image stayed on the server that built it).
    image_digest: Mapped[str] = mapped_column(String(255), default="")
    # Each server's part of a rollout: [{"server", "state", "phase", "reason", "replicas"}, ...].
    server_outcomes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    superseded_by_id: Mapped[int | None] = mapped_column(Integer, default=None)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    # Idempotency key of the request that created it (unique when set).
    request_id: Mapped[str | None] = mapped_column(String(255), unique=True, default=None)
    delivery_id: Mapped[str] = mapped_column(String(255), default="")
    pusher: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)

    app: Mapped[App] = relationship(lazy="joined")


class DeploymentEvent(Base):
    __tablename__ = "deployment_events"
    __table_args__ = (UniqueConstraint("deployment_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    seq: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(16))
    phase: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text, default="")
    step_current: Mapped[int] = mapped_column(default=0)
    step_total: Mapped[int] = mapped_column(default=0)
    state: Mapped[str] = mapped_column(String(16), default="")


class Job(Base):
    """A durable unit of work: carry out one deployment. Claimed with a lease."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_id", "status", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"), unique=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    # queued -> claimed -> done
    status: Mapped[str] = mapped_column(String(16), default="queued")
    claimed_by: Mapped[str] = mapped_column(String(64), default="")
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Notification(Base):
    """An outgoing deploy notification: written with the deployment's outcome, sent until delivered."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2048))
    body: Mapped[str] = mapped_column(Text)
    # pending -> delivered | failed (gave up)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AppHealth(Base):
    """What the health monitor last saw of an app's serving release on its server.

    One row per app, written only by the monitor (services.health). `health` changes by compare
    and set, so a transition is recorded, and announced, once.
    """

    __tablename__ = "app_health"

    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    # The serving deployment the observation is about; a newer release makes the row moot.
    deployment_id: Mapped[int] = mapped_column(Integer)
    # HEALTHY, DEGRADED or DOWN (services.health.assess.Health).
    health: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text, default="")
    # Docker's restart count summed over the release's containers, and when it last went up.
    restart_count: Mapped[int] = mapped_column(default=0)
    restarted_at: Mapped[datetime | None] = mapped_column(default=None)
    # When the server last answered; stale when its latest poll got no answer.
    observed_at: Mapped[datetime] = mapped_column(default=utcnow)
    stale: Mapped[bool] = mapped_column(default=False)


class AppCertificate(Base):
    """A domain's certificate as the app's server last reported it (a read model: no key material,
    which stays on the server). Written only by the certificate relay (services.certificates)."""

    __tablename__ = "app_certificates"

    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    domain: Mapped[str] = mapped_column(String(253), primary_key=True)
    # PENDING, ISSUED, FAILED, UPLOADED or SKIPPED (the agent's CertificateState).
    state: Mapped[str] = mapped_column(String(16))
    issuer: Mapped[str] = mapped_column(Text, default="")
    serial: Mapped[str] = mapped_column(String(64), default="")
    not_before: Mapped[datetime | None] = mapped_column(default=None)
    not_after: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str] = mapped_column(Text, default="")
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    uploaded: Mapped[bool] = mapped_column(default=False)
    observed_at: Mapped[datetime] = mapped_column(default=utcnow)


class Run(Base):
    """One command run in a fresh container of an app's serving release (`serversinc run`).

    The row says what was asked and, once known, how it ended; the output stays on the app's
    server (the agent keeps the last ones, bounded). A detached run is RUNNING until someone
    reads it and its server says it ended (services.runs)."""

    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_app_id_id", "app_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    # The serving deployment whose release it ran.
    deployment_id: Mapped[int] = mapped_column(Integer)
    command: Mapped[list[Any]] = mapped_column(JSON, default=list)
    detach: Mapped[bool] = mapped_column(default=False)
    # RUNNING, SUCCEEDED (exit 0) or FAILED.
    state: Mapped[str] = mapped_column(String(16))
    exit_code: Mapped[int | None] = mapped_column(Integer, default=None)
    reason: Mapped[str] = mapped_column(Text, default="")
    container_id: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)


class Registry(Base):
    """A container registry the servers push built images to and pull them from by digest, so
    every replica runs the same bytes. The password is encrypted (SecretBox), never in clear."""

    __tablename__ = "registries"

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(255), unique=True)
    username: Mapped[str] = mapped_column(String(255), default="")
    password: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
