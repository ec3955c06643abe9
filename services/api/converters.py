"""Converters between database rows / domain views and protobuf messages. Only this module and
the servicers import *_pb2 on the control plane."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from serversinc.v1 import api_token_service_pb2, app_pb2, deployment_pb2, git_service_pb2, server_service_pb2

from services.api.names import deployment_name
from services.apps.spec import AppSpec
from services.apps.status import AppView
from services.core.errors import InvalidArgument
from services.core.states import Trigger
from services.db.models import App
from services.deployments.events import Event
from services.deployments.service import DeploymentView
from services.security.secretbox import MASK


def ts(value: datetime | str | None) -> Timestamp | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    t = Timestamp()
    t.FromDatetime(value)
    return t


def whole_seconds(value: Duration, field: str) -> int:
    """A Duration the domain takes in seconds; an unset one is 0 (the default)."""
    if value.nanos or value.seconds < 0:
        raise InvalidArgument(f"{field} must be a whole, non-negative number of seconds", field=field)
    return value.seconds


def state_pb(state: str) -> int:
    return deployment_pb2.DeploymentState.Value(f"DEPLOYMENT_STATE_{state}")


def phase_pb(phase: str) -> int:
    return deployment_pb2.DeploymentPhase.Value(f"DEPLOYMENT_PHASE_{phase}") if phase else 0


def trigger_from_pb(value: int) -> Trigger:
    if value == 0:
        return Trigger.API
    return Trigger(deployment_pb2.DeploymentTrigger.Name(value).removeprefix("DEPLOYMENT_TRIGGER_"))


# Fields with the same name and meaning on App (proto), AppSpec and the App row.
_PLAIN_FIELDS = (
    "repo_url", "branch", "port", "health_path", "dockerfile", "context_dir", "health_timeout_seconds",
    "build_timeout_seconds", "stop_grace_seconds", "health_status_min", "health_status_max",
    "health_interval_ms", "health_probe_timeout_ms", "healthy_threshold", "stop_signal", "drain_seconds",
    "https_redirect", "hsts_max_age_seconds", "memory_limit_bytes", "cpu_limit_millis", "exclusive_volumes",
    "retain_releases", "replicas",
)


def health_mode_from_pb(value: int) -> str:
    return app_pb2.HealthCheckMode.Name(value).removeprefix("HEALTH_CHECK_MODE_") if value else ""


def health_mode_pb(mode: str) -> int:
    return app_pb2.HealthCheckMode.Value(f"HEALTH_CHECK_MODE_{mode}") if mode else 0


def volumes_pb(pairs) -> list[app_pb2.Volume]:
    """Stored [name, path] pairs as Volume messages."""
    return [app_pb2.Volume(name=name, path=path) for name, path in pairs or ()]


def spec_from_pb(app: app_pb2.App) -> AppSpec:
    return AppSpec(
        name=app.name, env=dict(app.env), server=app.server, servers=list(app.servers), domains=list(app.domains),
        secret_env=dict(app.secret_env), notify_urls=list(app.notify_urls),
        health_check_mode=health_mode_from_pb(app.health_check_mode),
        volumes=[(v.name, v.path) for v in app.volumes], release_command=list(app.release_command),
        **{key: getattr(app, key) for key in _PLAIN_FIELDS},
    )


def app_to_pb(app: App, status: str = "", current: DeploymentView | None = None,
              secret_keys: list[str] = (), view: AppView | None = None,
              servers: list[str] | None = None) -> app_pb2.App:
    """`view` (services.apps.status) adds the newest finished deployment and the health record;
    `servers` are the app's servers in rollout order (default: its one server)."""
    msg = app_pb2.App(
        secret_env={key: MASK for key in secret_keys}, servers=servers or [app.server.name],
        name=app.name, env=dict(app.env or {}), server=app.server.name, domains=list(app.domains or []),
        notify_urls=list(app.notify_urls or []),
        maintenance=bool(app.maintenance), maintenance_message=app.maintenance_message or "",
        health_check_mode=health_mode_pb(app.health_check_mode), url=app.url or "",
        volumes=volumes_pb(app.volumes), release_command=list(app.release_command or []),
        **{key: getattr(app, key) for key in _PLAIN_FIELDS},
        status=app_pb2.AppStatus.Value(f"APP_STATUS_{status}") if status else 0,
        create_time=ts(app.created_at), update_time=ts(app.updated_at),
    )
    if current is not None:
        dep = current.row
        msg.current_deployment = deployment_name(app.name, dep.id)
        msg.current_commit = dep.commit_sha
        msg.current_commit_message = dep.commit_message
        if dep.finished_at:
            msg.last_deploy_time.CopyFrom(ts(dep.finished_at))
    if view is not None:
        if view.latest is not None:
            msg.latest_deployment = deployment_name(app.name, view.latest.id)
            msg.latest_deployment_failed = view.latest_failed
        if view.health is not None:
            msg.health_detail = view.health.detail
            msg.health_observe_time.CopyFrom(ts(view.health.observed_at))
            msg.health_stale = view.health.stale
        for c in view.certificates:
            msg.certificates.add(
                domain=c.domain, state=app_pb2.CertificateState.Value(f"CERTIFICATE_STATE_{c.state}"),
                issuer=c.issuer, serial=c.serial, not_before=ts(c.not_before), not_after=ts(c.not_after),
                last_error=c.last_error, next_attempt_time=ts(c.next_attempt_at), uploaded=c.uploaded,
                observe_time=ts(c.observed_at))
    return msg


def deployment_to_pb(view: DeploymentView) -> deployment_pb2.Deployment:
    d = view.row
    msg = deployment_pb2.Deployment(
        name=deployment_name(d.app.name, d.id), id=d.id, app=d.app.name, state=state_pb(d.state), phase=phase_pb(d.phase),
        trigger=deployment_pb2.DeploymentTrigger.Value(f"DEPLOYMENT_TRIGGER_{d.trigger}"), rebuild=d.rebuild,
        requested_commit_sha=d.requested_commit_sha, commit_sha=d.commit_sha, commit_message=d.commit_message,
        image=d.image, image_id=d.image_id, build_skipped=d.build_skipped, build_seconds=d.build_seconds,
        deploy_seconds=d.deploy_seconds, failure_phase=phase_pb(d.failure_phase), failure_reason=d.failure_reason,
        queue_position=view.queue_position, container_id=d.container_id, url=d.url,
        source_deployment=deployment_name(d.app.name, d.source_deployment_id) if d.source_deployment_id else "",
        superseded_by=deployment_name(d.app.name, d.superseded_by_id) if d.superseded_by_id else "",
        create_time=ts(d.created_at), start_time=ts(d.started_at), end_time=ts(d.finished_at),
        delivery_id=d.delivery_id, pusher=d.pusher, log_pruned=view.log_pruned,
        image_digest=d.image_digest or "", server_outcomes=server_outcomes_pb(d.server_outcomes),
    )
    for t in d.phase_timings or []:
        msg.phase_timings.add(phase=phase_pb(t["phase"]), start_time=ts(t["start"]), end_time=ts(t.get("end")))
        msg.unserved_seconds = t.get("unserved_seconds", msg.unserved_seconds)  # Recorder.note_unserved
    if d.release:
        r = d.release
        known = {f.name for f in deployment_pb2.Release.DESCRIPTOR.fields}
        fields = {k: v for k, v in r.items() if k in known and k not in ("health_check_mode", "volumes")}
        msg.release.CopyFrom(deployment_pb2.Release(
            health_check_mode=health_mode_pb(r.get("health_check_mode", "")), volumes=volumes_pb(r.get("volumes")),
            **fields,
        ))
    return msg


def server_outcomes_pb(outcomes) -> list[deployment_pb2.ServerOutcome]:
    """Deployment.server_outcomes (services.apps.placement) as ServerOutcome messages."""
    return [deployment_pb2.ServerOutcome(
        server=o.get("server", ""),
        state=deployment_pb2.ServerOutcomeState.Value(f"SERVER_OUTCOME_STATE_{o['state']}") if o.get("state") else 0,
        phase=phase_pb(o.get("phase") or ""), reason=o.get("reason") or "", replicas=int(o.get("replicas") or 0),
    ) for o in outcomes or []]


def event_to_pb(e: Event, app: str) -> deployment_pb2.DeploymentEvent:
    return deployment_pb2.DeploymentEvent(
        deployment=deployment_name(app, e.deployment_id), seq=e.seq, time=ts(e.time),
        kind=deployment_pb2.EventKind.Value(f"EVENT_KIND_{e.kind}"), phase=phase_pb(e.phase), message=e.message,
        step_current=e.step_current, step_total=e.step_total, state=state_pb(e.state) if e.state else 0,
    )


def certificate_to_pb(c) -> app_pb2.DomainCertificate:
    """A CertificateView (as an agent reported it) as the API shows it."""
    return app_pb2.DomainCertificate(
        domain=c.domain, state=app_pb2.CertificateState.Value(f"CERTIFICATE_STATE_{c.state}"),
        issuer=c.issuer, serial=c.serial, not_before=ts(c.not_before), not_after=ts(c.not_after),
        last_error=c.last_error, next_attempt_time=ts(c.next_attempt_at), uploaded=c.uploaded)


def container_to_pb(c) -> app_pb2.Container:
    return app_pb2.Container(
        id=c.id, name=c.name, app=c.app, deployment=deployment_name(c.app, c.deployment_id) if c.deployment_id else "",
        commit_sha=c.commit_sha, image=c.image, state=c.state, direct_url=c.direct_url, create_time=ts(c.created),
        draining=getattr(c, "draining", False), open_connections=getattr(c, "open_connections", 0),
        server=getattr(c, "server", ""),
    )


def server_to_pb(server, info=None, error: str = "") -> server_service_pb2.Server:
    msg = server_service_pb2.Server(name=server.name, address=server.address, create_time=ts(server.created_at),
                                    registered=bool(server.agent_secret))
    if server.last_seen_at is not None:
        msg.last_seen_time.CopyFrom(ts(server.last_seen_at))
    msg.cert_serial = server.cert_serial or ""
    if server.cert_not_after is not None:
        msg.cert_expire_time.CopyFrom(ts(server.cert_not_after))
    if info is not None:
        msg.state = server_service_pb2.SERVER_STATE_ONLINE
        msg.docker_version, msg.agent_version = info.docker_version, info.agent_version
        msg.running_containers = info.running_containers
    else:
        msg.state = server_service_pb2.SERVER_STATE_OFFLINE
        msg.error = error
    return msg


def branch_to_pb(branch) -> git_service_pb2.Branch:
    return git_service_pb2.Branch(name=branch.name, commit_sha=branch.sha)


def token_to_pb(token, secret: str = "") -> api_token_service_pb2.ApiToken:
    return api_token_service_pb2.ApiToken(
        name=token.name, secret=secret, create_time=ts(token.created_at), last_used_time=ts(token.last_used_at))
