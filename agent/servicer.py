"""gRPC servicer: validates requests, runs the domain logic, converts to and from protobuf.

The only module (with nothing else) that imports the generated `*_pb2` code; errors become
gRPC status codes with actionable messages, never tracebacks.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from collections.abc import AsyncIterator
from contextlib import aclosing
from datetime import timezone

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from serversinc.v1 import deployment_pb2
from tugboat.v1 import tugboat_pb2 as pb
from tugboat.v1 import tugboat_pb2_grpc as pb_grpc

from agent.apps import AppAdmin, UnknownApp
from agent.certificates import AppTls, CertificateError, domains_of
from agent import cert_policy
from agent.build_slots import BuildSlots
from agent.builder import (Builder, BuildFailed, BuildLine, BuildSpec, BuildSucceeded,
                           SlotNeeded, normalize_paths)
from agent.docker_engine import EngineError
from agent.operations import AlreadyRunning, Operations
from agent.health import HealthPolicy
from agent.log_follow import LogReader
from agent.log_source import LogSource
from agent.oom_watch import OomKills
from agent.releaser import DeployProgress, DeploySpec, Failure, Releaser
from agent import run_rpc
from agent import prune_rpc
from agent import push_rpc
from agent import serving_cert_rpc
from agent.router import Health, RouterError, UnknownRoute
from common.aio_server import in_thread
from common import rules, runtime_rules
from common.phases import Phase
from common.rules import HEALTH

log = logging.getLogger(__name__)

_FAILURES = {Failure.BUILD: pb.FAILURE_KIND_BUILD, Failure.START: pb.FAILURE_KIND_START,
             Failure.HEALTH: pb.FAILURE_KIND_HEALTH, Failure.SWITCH: pb.FAILURE_KIND_SWITCH,
             Failure.CANCELLED: pb.FAILURE_KIND_CANCELLED, Failure.INTERNAL: pb.FAILURE_KIND_INTERNAL,
             Failure.RELEASE_COMMAND: pb.FAILURE_KIND_RELEASE_COMMAND}


_HEALTH = {Health.UNKNOWN: pb.CONTAINER_HEALTH_UNKNOWN, Health.HEALTHY: pb.CONTAINER_HEALTH_HEALTHY,
           Health.UNHEALTHY: pb.CONTAINER_HEALTH_UNHEALTHY}


def _phase(phase: Phase) -> int:
    return deployment_pb2.DeploymentPhase.Value(f"DEPLOYMENT_PHASE_{phase}")


def _seconds(duration, what: str, maximum: int = rules.MAX_SECONDS) -> int:
    """A Duration field as whole seconds (rounded up; unset is 0, "the default")."""
    if duration.seconds < 0 or duration.nanos < 0:
        raise rules.RuleError(f"{what} is negative")
    return rules.seconds(duration.seconds + (1 if duration.nanos else 0), what, maximum=maximum)


def _deploy_event(item: DeployProgress) -> pb.DeployEvent:
    event = pb.DeployEvent(phase=_phase(item.phase), container_id=item.container_id)
    if item.failure is not None:
        event.failure.CopyFrom(pb.DeployFailure(kind=_FAILURES[item.failure], error=item.error))
    elif item.phase is Phase.DONE:
        event.result.CopyFrom(pb.DeployResult(url=item.url, message=item.message,
                                              unserved_seconds=item.unserved_seconds))
    else:
        event.message = item.message
    return event


def _timestamp(value) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def _unix_timestamp(seconds: float) -> Timestamp | None:
    if not seconds:
        return None
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


_CERT_STATES = {cert_policy.PENDING: pb.CERTIFICATE_STATE_PENDING,
                cert_policy.ISSUED: pb.CERTIFICATE_STATE_ISSUED,
                cert_policy.FAILED: pb.CERTIFICATE_STATE_FAILED,
                cert_policy.UPLOADED: pb.CERTIFICATE_STATE_UPLOADED,
                cert_policy.SKIPPED: pb.CERTIFICATE_STATE_SKIPPED}


def certificate_message(status: cert_policy.DomainStatus) -> pb.Certificate:
    """A domain's certificate status as the API shows it: never key material."""
    return pb.Certificate(domain=status.domain, app=status.app, state=_CERT_STATES[status.state],
                          issuer=status.issuer, serial=status.serial,
                          not_before=_unix_timestamp(status.not_before),
                          not_after=_unix_timestamp(status.not_after),
                          last_error=status.last_error,
                          next_attempt_time=_unix_timestamp(status.next_attempt),
                          renewals=status.renewals,
                          uploaded=status.source == cert_policy.SOURCE_UPLOAD)


class TugboatServicer(pb_grpc.TugboatServiceServicer):
    """Unary methods are synchronous (grpc.aio runs them in its thread pool); Build and Deploy
    drive their blocking work item by item in that pool (common.aio_server.in_thread), so a
    cancelled call cancels the operation; StreamLogs is a coroutine: followers hold no thread."""

    def __init__(self, builder: Builder, releaser: Releaser, admin: AppAdmin,
                 operations: Operations, logs: LogReader, certificates=None, archive=None,
                 build_slots: BuildSlots | None = None) -> None:
        self.certificates = certificates  # agent.certificates.CertificateManager, or None
        self.builder = builder
        # Builds at once on this server (AgentConfig.build_concurrency).
        self.build_slots = build_slots or BuildSlots()
        self.releaser = releaser
        self.admin = admin
        self.operations = operations
        self.logs = logs
        self.log_source = LogSource(admin, logs, archive)  # archive: agent.log_archive.LogArchive

    # ---- helpers ---------------------------------------------------------------------------
    @staticmethod
    def _invalid(context, exc: Exception):
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))

    @staticmethod
    def _internal(context, what: str, exc: Exception):
        log.exception("%s failed", what)
        context.abort(grpc.StatusCode.INTERNAL, f"{what} failed: {exc}")

    # ---- Build -----------------------------------------------------------------------------
    async def Build(self, request, context) -> AsyncIterator[pb.BuildEvent]:
        try:
            spec = BuildSpec(app=rules.app_name(request.app),
                             deployment_id=rules.deployment_id(request.deployment_id),
                             repo_url=rules.repo_url(request.repo_url),
                             commit_sha=rules.commit_sha(request.commit_sha),
                             dockerfile=request.dockerfile or "Dockerfile",
                             context_dir=request.context_dir, force=request.force,
                             memory_bytes=runtime_rules.memory_bytes(request.resources.memory_bytes),
                             cpu_millis=runtime_rules.cpu_millis(request.resources.cpu_millis))
            spec = normalize_paths(spec)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        held = False
        try:
            with self.operations.run(spec.deployment_id) as token:
                async for item in in_thread(self.builder.build(spec, token), token.cancel):
                    if isinstance(item, SlotNeeded):
                        queued = not self.build_slots.free()
                        if queued:  # the caller's deadline stops until the slot is ours
                            yield pb.BuildEvent(line=self.build_slots.waiting_line)
                            yield pb.BuildEvent(waiting_for_slot=True)
                            since = asyncio.get_running_loop().time()
                        # False: cancelled while waiting; the builder then ends as cancelled.
                        held = await self.build_slots.acquire(token)
                        if queued and held:
                            waited = asyncio.get_running_loop().time() - since
                            yield pb.BuildEvent(line=f"got a build slot after waiting {waited:.1f}s")
                            yield pb.BuildEvent(waiting_for_slot=False)
                        continue
                    if held and isinstance(item, (BuildSucceeded, BuildFailed)):
                        held = False  # the engine is done: the next build may start
                        self.build_slots.release()
                    if isinstance(item, BuildSucceeded) and self.pruner is not None:
                        # Kept from now on for its deploy, before the caller hears of it.
                        await asyncio.get_running_loop().run_in_executor(
                            None, self.pruner.built, spec.app, item.image, item.image_id)
                    yield self._build_event(item)
        except AlreadyRunning as exc:
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, str(exc))
        except (grpc.RpcError, grpc.aio.AbortError):
            raise
        except Exception as exc:  # never a traceback to the client: report as the build's error
            log.exception("build of %s failed", request.app)
            yield pb.BuildEvent(error=pb.BuildFailure(message=f"internal agent error: {exc}"))
        finally:
            if held:
                self.build_slots.release()

    @staticmethod
    def _build_event(item) -> pb.BuildEvent:
        if isinstance(item, BuildLine):
            if item.step_current:
                return pb.BuildEvent(progress=pb.BuildProgress(
                    line=item.line, step_current=item.step_current, step_total=item.step_total))
            return pb.BuildEvent(line=item.line)
        if isinstance(item, BuildSucceeded):
            return pb.BuildEvent(result=pb.BuildResult(
                image=item.image, image_id=item.image_id, skipped=item.skipped,
                commit_message=item.commit_message, seconds=item.seconds))
        assert isinstance(item, BuildFailed)
        return pb.BuildEvent(error=pb.BuildFailure(message=item.error, cancelled=item.cancelled))

    # ---- Deploy ----------------------------------------------------------------------------
    async def Deploy(self, request, context) -> AsyncIterator[pb.DeployEvent]:
        try:
            spec = DeploySpec(
                app=rules.app_name(request.app),
                deployment_id=rules.deployment_id(request.deployment_id),
                image=request.image or "", commit_sha=rules.commit_sha(request.commit_sha),
                port=rules.port(request.port),
                health_path=rules.health_path(request.health_path or HEALTH.path),
                health_timeout_seconds=_seconds(request.health_timeout, "health timeout"),
                stop_grace_seconds=_seconds(request.stop_grace, "stop grace period"),
                env=rules.env(dict(request.env)),
                health=self._health_policy(request.health_check),
                stop_signal=rules.stop_signal(request.stop_signal),
                drain_seconds=_seconds(request.drain, "drain period",
                                       maximum=rules.MAX_DRAIN_SECONDS)
                or rules.DRAIN_SECONDS,
                domains=tuple(rules.domains(request.domains)),
                memory_bytes=runtime_rules.memory_bytes(request.resources.memory_bytes),
                cpu_millis=runtime_rules.cpu_millis(request.resources.cpu_millis),
                volumes=tuple(runtime_rules.volumes((v.name, v.path) for v in request.volumes)),
                exclusive_volumes=request.exclusive_volumes,
                release_command=tuple(runtime_rules.release_command(request.release_command)),
                retain_releases=runtime_rules.retain_releases(request.retain_releases),
                replicas=runtime_rules.replicas(request.replicas))
            if not spec.image:
                spec = replace(spec, image=f"{spec.app}:{spec.commit_sha}")
            if request.HasField("pull_credentials"):
                spec = replace(spec, pull_login=push_rpc.login_of(request.pull_credentials))
            tls = AppTls(domains_of(spec.domains, spec.app), request.https_redirect,
                         rules.hsts_seconds(request.hsts_max_age.seconds))
            if self.certificates is not None:
                # Certificates are asked for as the deploy starts: issuance runs beside the build.
                await asyncio.get_running_loop().run_in_executor(
                    None, self.certificates.want, spec.app, tls)
        except ValueError as exc:  # RuleError, CertificateError
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except (RouterError, OSError) as exc:  # HTTPS is not the deploy: it goes on, on HTTP
            log.warning("HTTPS settings of %s not applied: %s", request.app, exc)
        try:
            with self.operations.run(spec.deployment_id) as token:
                async for item in in_thread(self.releaser.deploy(spec, token), token.cancel):
                    yield _deploy_event(item)
        except AlreadyRunning as exc:
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, str(exc))
        except (grpc.RpcError, grpc.aio.AbortError):
            raise
        except Exception as exc:
            log.exception("deploy of %s failed", request.app)
            yield pb.DeployEvent(phase=_phase(Phase.START), failure=pb.DeployFailure(
                kind=pb.FAILURE_KIND_INTERNAL, error=f"internal agent error: {exc}"))

    @staticmethod
    def _health_policy(check) -> HealthPolicy:
        return HealthPolicy.from_values(
            use_docker_healthcheck=check.use_docker_healthcheck, status_min=check.status_min,
            status_max=check.status_max, interval_ms=check.interval_ms,
            probe_timeout_ms=check.probe_timeout_ms, healthy_threshold=check.healthy_threshold)

    # ---- Cancel ----------------------------------------------------------------------------
    def Cancel(self, request, context):
        if not self.operations.cancel(request.deployment_id):
            context.abort(grpc.StatusCode.NOT_FOUND,
                          f"no Build or Deploy is running for deployment {request.deployment_id}")
        return pb.CancelResponse()

    # ---- housekeeping ----------------------------------------------------------------------
    def ListContainers(self, request, context):
        if request.app:
            try:
                rules.app_name(request.app)
            except ValueError as exc:
                self._invalid(context, exc)
        try:
            items = self.admin.list_containers(request.app)
        except EngineError as exc:
            self._internal(context, "listing containers", exc)
        return pb.ListContainersResponse(containers=[
            pb.ContainerInfo(id=m.record.id, name=m.record.name, app=m.record.app,
                             deployment_id=m.record.deployment_id, commit_sha=m.record.commit_sha,
                             image=m.record.image, state=m.record.state,
                             direct_url=m.record.direct_url,
                             create_time=_timestamp(m.record.created), serving=m.serving, url=m.url,
                             health=_HEALTH[m.health.health], health_detail=m.health.detail,
                             restart_count=m.record.restart_count, draining=m.draining,
                             open_connections=m.open_connections, **self._oom_fields(m.record))
            for m in items])

    # agent.oom_watch.OomWatch of the engine, set by agent.server; None: inspect's flag only.
    oom = None

    def _oom_fields(self, record) -> dict:
        """ContainerInfo's oom_kills and last_oom_time for one container."""
        if self.oom is not None:
            kills = self.oom.kills(record)
        else:
            kills = OomKills(1, record.finished_at) if record.oom_killed else OomKills()
        return {"oom_kills": kills.count,
                "last_oom_time": _timestamp(kills.last) if kills.last else None}

    async def StreamLogs(self, request, context):
        """A coroutine on the server's loop: a follower holds a connection, not a thread.
        The serving container's output, or a release's (live, else archived: agent.log_source)."""
        try:
            rules.app_name(request.app)
            if request.tail < 0:
                raise ValueError("tail must be >= 0 (0 means all lines)")
            if request.deployment_id < 0:
                raise ValueError("deployment_id must be >= 0 (0 means the serving container)")
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        since = request.since.ToDatetime(tzinfo=timezone.utc) if request.HasField("since") else None
        try:
            # aclosing: a follower that goes away while its line is being sent closes the
            # daemon connection now, not whenever the suspended generator is collected.
            async with aclosing(self.log_source.entries(
                    request.app, deployment_id=request.deployment_id, follow=request.follow,
                    tail=request.tail, since=since)) as lines:
                async for stamp, text, container_id in lines:
                    yield pb.LogEntry(time=_timestamp(stamp), text=text, container_id=container_id)
        except UnknownApp as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        except (EngineError, OSError) as exc:
            log.exception("streaming logs failed")
            await context.abort(grpc.StatusCode.INTERNAL, f"streaming logs failed: {exc}")

    def StopApp(self, request, context):
        stopped = self._app_admin(request.app, context, "stopping app", self.admin.stop_app)
        return pb.StopAppResponse(stopped=stopped)

    def RemoveApp(self, request, context):
        def remove(app: str):
            self.releaser.one_offs.remove_app(app)  # first: a run may hold the app's volumes
            return self.admin.remove_app(app, delete_volumes=request.delete_volumes)
        removed = self._app_admin(request.app, context, "removing app", remove)
        if self.pruner is not None:
            self.pruner.history.forget(request.app)  # its releases are gone with it
        if self.certificates is not None:
            try:
                self.certificates.forget(request.app)
            except (RouterError, OSError) as exc:
                log.warning("certificates of %s not all retired: %s", request.app, exc)
        return pb.RemoveAppResponse(removed=removed.containers,
                                    removed_volumes=removed.volumes.removed,
                                    kept_volumes=removed.volumes.kept)

    # ---- certificates ------------------------------------------------------------------------
    def ListCertificates(self, request, context):
        if request.app:
            try:
                rules.app_name(request.app)
            except ValueError as exc:
                self._invalid(context, exc)
        if self.certificates is None:
            return pb.ListCertificatesResponse()
        front = self.certificates.front.load_settings()
        return pb.ListCertificatesResponse(
            certificates=[certificate_message(s) for s in self.certificates.statuses(request.app)],
            https_front_door=front.https_front_door if front else "")

    def UploadCertificate(self, request, context):
        try:
            rules.app_name(request.app)
            domain = rules.domain(request.domain)
        except ValueError as exc:
            self._invalid(context, exc)
        if self.certificates is None:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          "this agent's front door serves no HTTPS (start it with "
                          "--https-front-door HOST:PORT)")
        try:
            status = self.certificates.upload(request.app, domain, request.certificate_pem,
                                              request.private_key_pem)
        except CertificateError as exc:
            self._invalid(context, exc)
        except (RouterError, OSError) as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"the front door did not take the "
                          f"certificate: {exc}")
        return certificate_message(status)

    # ---- maintenance -------------------------------------------------------------------------
    def SetMaintenance(self, request, context):
        try:
            rules.app_name(request.app)
            message = rules.maintenance_message(request.message) if request.enabled else ""
        except ValueError as exc:
            self._invalid(context, exc)
        try:
            self.releaser.router.set_maintenance(request.app, request.enabled, message)
        except UnknownRoute as exc:
            context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        except RouterError as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        return pb.SetMaintenanceResponse(enabled=request.enabled, message=message)

    def _app_admin(self, app: str, context, doing: str, action):
        """An admin action on one app, its errors as status codes: bad name, unknown app, engine."""
        try:
            rules.app_name(app)
        except ValueError as exc:
            self._invalid(context, exc)
        try:
            return action(app)
        except UnknownApp as exc:
            context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        except EngineError as exc:
            self._internal(context, doing, exc)

    # ---- one-off commands (agent.run_rpc) ---------------------------------------------------
    async def RunCommand(self, request, context):
        async for event in run_rpc.run_command(self.releaser.one_offs, request, context):
            yield event

    def GetRun(self, request, context):
        return run_rpc.get_run(self.releaser.one_offs, request, context)

    # ---- retention ---------------------------------------------------------------------------
    # agent.pruner.Pruner, set by agent.server.
    pruner = None

    def Prune(self, request, context):
        return prune_rpc.prune(self.pruner, request, context)

    def ListImages(self, request, context):
        return prune_rpc.list_images(self.pruner, request, context)

    def PushImage(self, request, context):
        return push_rpc.push(getattr(self, "registry_images", None), request, context)

    # ---- the agent's own certificate (agent.serving_cert_rpc) ------------------------------
    # agent.serving_cert.ServingCertificate, set by agent.server (None when serving plaintext).
    serving_cert = None

    def PrepareAgentCertificate(self, request, context):
        return serving_cert_rpc.prepare(self.serving_cert, request, context)

    def InstallAgentCertificate(self, request, context):
        return serving_cert_rpc.install(self.serving_cert, request, context)

    def GetInfo(self, request, context):
        info = self.admin.info()
        return pb.Info(agent_version=info.agent_version, docker_version=info.docker_version,
                       hostname=info.hostname, running_containers=info.running_containers)


SERVICE_NAME = "tugboat.v1.TugboatService"


class HealthStatus:
    """The standard gRPC health service for the agent (asyncio), flipped by the server's lifecycle."""

    def __init__(self) -> None:
        self.servicer = health.aio.HealthServicer()

    async def set_serving(self, serving: bool) -> None:
        if not serving:
            await self.servicer.enter_graceful_shutdown()
            return
        for name in ("", SERVICE_NAME):
            await self.servicer.set(name, health_pb2.HealthCheckResponse.SERVING)


def add_to_server(servicer: TugboatServicer, server: grpc.aio.Server) -> HealthStatus:
    """Register the Tugboat service and the gRPC health service on `server`."""
    pb_grpc.add_TugboatServiceServicer_to_server(servicer, server)
    status = HealthStatus()
    health_pb2_grpc.add_HealthServicer_to_server(status.servicer, server)
    return status
