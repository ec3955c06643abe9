"""The gRPC adapter for the agent port: TugboatService calls in, plain dataclasses out."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from datetime import datetime, timezone

import grpc
from google.protobuf.duration_pb2 import Duration
from serversinc.v1 import deployment_pb2
from tugboat.v1 import tugboat_pb2 as pb
from tugboat.v1 import tugboat_pb2_grpc

from common.phases import Phase
from services.agents.build_deadline import BUILD, SLOT_WAIT, BuildDeadline
from services.certificates.repository import CertificateView
from services.retention.views import AgentImage, AppImages, PrunedItem, PruneResult
from services.agents.port import (
    AgentBusy,
    AgentCancelled,
    AgentError,
    AgentInfo,
    AgentSlotWaitTimeout,
    AgentTimeout,
    AgentUnavailable,
    AppRemoval,
    BuildSpec,
    BuildUpdate,
    CancelToken,
    ContainerView,
    DeployUpdate,
    LogEntry,
    RegistryAuth,
    ReleaseSpec,
    RunReport,
    RunSpec,
    RunUpdate,
    UnknownRunOnAgent,
)


class AppNotOnAgent(AgentError):
    """The agent has nothing of the app (no route): it was never deployed on that server."""


class LogsNotKept(AgentError):
    """The agent has no container and no archived output of that release (agent.log_archive)."""


class CertificateRefused(AgentError):
    """The agent refused an uploaded certificate (bad pair, wrong domain, no HTTPS front door)."""


def _when(value):
    return value.ToDatetime(tzinfo=timezone.utc) if value.seconds or value.nanos else None


def _certificate_view(c: pb.Certificate) -> CertificateView:
    return CertificateView(
        app=c.app, domain=c.domain, state=pb.CertificateState.Name(c.state).removeprefix("CERTIFICATE_STATE_"),
        issuer=c.issuer, serial=c.serial, not_before=_when(c.not_before), not_after=_when(c.not_after),
        last_error=c.last_error, next_attempt_at=_when(c.next_attempt_time), uploaded=c.uploaded)


@dataclass(frozen=True)
class AgentTLS:
    """The control plane's side of mutual TLS with agents: the agents' CA and our client pair."""

    ca: bytes
    cert: bytes
    key: bytes

    @classmethod
    def from_dir(cls, certs: Path) -> "AgentTLS | None":
        """Reads ca.pem, control-plane.pem and control-plane-key.pem (scripts/certs.py makes them)."""
        files = [certs / "ca.pem", certs / "control-plane.pem", certs / "control-plane-key.pem"]
        if not all(f.exists() for f in files):
            return None
        return cls(*(f.read_bytes() for f in files))


# How long a Build or Deploy waits for a connection before it starts: enough for an agent that is
# restarting (about a second), short enough that a deployment to an agent that is down fails
# within 5 s (issue 13) instead of waiting for its whole deadline.
CONNECT_SECONDS = 3.0


def agent_channel(address: str, tls: AgentTLS | None) -> grpc.Channel:
    """The one place agent channels are made: mutual TLS when configured."""
    # An agent restarts in about a second (run.sh, compose, systemd): reconnect within that, rather
    # than after gRPC's default back-off of up to two minutes.
    options = [("grpc.enable_retries", 1), ("grpc.initial_reconnect_backoff_ms", 100),
               ("grpc.min_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 1000)]
    if tls is None:
        return grpc.insecure_channel(address, options=options)
    creds = grpc.ssl_channel_credentials(root_certificates=tls.ca, private_key=tls.key, certificate_chain=tls.cert)
    return grpc.secure_channel(address, creds, options=options)


def agent_aio_channel(address: str, tls: AgentTLS | None) -> grpc.aio.Channel:
    """The asyncio twin of `agent_channel`, for streams relayed on the API's event loop."""
    if tls is None:
        return grpc.aio.insecure_channel(address)
    creds = grpc.ssl_channel_credentials(root_certificates=tls.ca, private_key=tls.key, certificate_chain=tls.cert)
    return grpc.aio.secure_channel(address, creds)


def _credentials(auth: RegistryAuth) -> pb.RegistryCredentials:
    return pb.RegistryCredentials(address=auth.address, username=auth.username, password=auth.password)


def _build_update(ev: pb.BuildEvent) -> BuildUpdate:
    kind = ev.WhichOneof("event")
    if kind == "progress":
        p = ev.progress
        return BuildUpdate(line=p.line, step_current=p.step_current, step_total=p.step_total)
    if kind == "result":
        r = ev.result
        return BuildUpdate(image=r.image, image_id=r.image_id, skipped=r.skipped,
                           commit_message=r.commit_message, seconds=r.seconds, done=True)
    if kind == "error":
        return BuildUpdate(error=ev.error.message, cancelled=ev.error.cancelled, done=True)
    return BuildUpdate(line=ev.line)


def _deploy_update(ev: pb.DeployEvent) -> DeployUpdate:
    """`step` is the phase's name (common.phases.Phase), `failure` the failure kind's."""
    update = DeployUpdate(phase=Phase(deployment_pb2.DeploymentPhase.Name(ev.phase).removeprefix("DEPLOYMENT_PHASE_")),
                          container_id=ev.container_id)
    kind = ev.WhichOneof("event")
    if kind == "failure":
        update.failure = pb.FailureKind.Name(ev.failure.kind).removeprefix("FAILURE_KIND_")
        update.error = ev.failure.error
    elif kind == "result":
        update.url, update.message = ev.result.url, ev.result.message
        update.unserved_seconds = ev.result.unserved_seconds
    else:
        update.message = ev.message
    return update


class AgentClient:
    def __init__(self, address: str, secret: str = "", tls: AgentTLS | None = None, channel: grpc.Channel | None = None,
                 server: str = ""):
        self.address = address
        # Who failed, in errors: the server's name (when known) and the address dialled.
        self.who = f"server {server!r} (agent at {address})" if server else f"agent at {address}"
        self._tls = tls
        self.channel = channel or agent_channel(address, tls)
        self.stub = tugboat_pb2_grpc.TugboatServiceStub(self.channel)
        # Every call carries the agent's secret; the agent refuses calls without it.
        self.metadata = (("authorization", f"Bearer {secret}"),) if secret else ()

    def close(self) -> None:
        self.channel.close()

    def _connected(self) -> None:
        """Long operations start only on a connected channel: a just-restarted agent is waited
        for (at most CONNECT_SECONDS), an agent that is down fails fast with AgentUnavailable."""
        try:
            grpc.channel_ready_future(self.channel).result(timeout=CONNECT_SECONDS)
        except grpc.FutureTimeoutError:
            raise AgentUnavailable(f"{self.who} is unreachable: no connection within "
                                   f"{CONNECT_SECONDS:g}s") from None

    def _stream(self, call, cancel: CancelToken):
        """Iterates a server stream; cancelling the token cancels the call on the agent too."""
        unregister = cancel.on_cancel(call.cancel)
        try:
            yield from call
        except grpc.RpcError as err:
            raise self._error(err, cancel) from None
        finally:
            unregister()

    def _error(self, err: grpc.RpcError, cancel: CancelToken | None = None) -> AgentError:
        code = err.code()
        if code == grpc.StatusCode.CANCELLED and cancel is not None and cancel.cancelled:
            return AgentCancelled("cancelled")
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return AgentTimeout("deadline exceeded")
        if code == grpc.StatusCode.UNAVAILABLE:
            return AgentUnavailable(f"{self.who} is unreachable: {err.details()}")
        if code == grpc.StatusCode.ALREADY_EXISTS:
            return AgentBusy(err.details() or "the deployment already has a Build or Deploy running")
        return AgentError(f"agent error ({code.name}): {err.details()}")

    def build(self, spec: BuildSpec, *, timeout: float, cancel: CancelToken,
              slot_wait: float) -> Iterator[BuildUpdate]:
        request = pb.BuildRequest(
            app=spec.app, deployment_id=spec.deployment_id, repo_url=spec.repo_url, commit_sha=spec.commit_sha,
            dockerfile=spec.dockerfile, context_dir=spec.context_dir, force=spec.force,
            resources=pb.Resources(memory_bytes=spec.memory_bytes, cpu_millis=spec.cpu_millis),
        )
        self._connected()
        # No gRPC deadline: it would go on while the build waits for a slot. The BuildDeadline
        # stops then, and cancels the call when it expires.
        call = self.stub.Build(request, metadata=self.metadata, wait_for_ready=True)
        deadline = BuildDeadline(timeout, slot_wait, call.cancel)
        try:
            for ev in self._stream(call, cancel):
                if ev.WhichOneof("event") == "waiting_for_slot":
                    deadline.waiting(ev.waiting_for_slot)
                    continue
                yield _build_update(ev)
        except AgentError:
            if deadline.expired == BUILD:
                raise AgentTimeout("deadline exceeded") from None
            if deadline.expired == SLOT_WAIT:
                raise AgentSlotWaitTimeout(f"waited {slot_wait:g}s for a build slot on {self.who}") from None
            raise
        finally:
            deadline.close()

    def deploy(self, spec: ReleaseSpec, *, timeout: float, cancel: CancelToken) -> Iterator[DeployUpdate]:
        request = pb.DeployRequest(
            app=spec.app, deployment_id=spec.deployment_id, image=spec.image, commit_sha=spec.commit_sha,
            port=spec.port, health_path=spec.health_path, health_timeout=Duration(seconds=spec.health_timeout_seconds),
            stop_grace=Duration(seconds=spec.stop_grace_seconds), env=spec.env,
            health_check=pb.HealthCheck(
                use_docker_healthcheck=spec.health_check_mode == "DOCKER", status_min=spec.health_status_min,
                status_max=spec.health_status_max, interval_ms=spec.health_interval_ms,
                probe_timeout_ms=spec.health_probe_timeout_ms, healthy_threshold=spec.healthy_threshold,
            ),
            stop_signal=spec.stop_signal, drain=Duration(seconds=spec.drain_seconds), domains=spec.domains,
            https_redirect=spec.https_redirect, hsts_max_age=Duration(seconds=spec.hsts_max_age_seconds),
            resources=pb.Resources(memory_bytes=spec.memory_limit_bytes, cpu_millis=spec.cpu_limit_millis),
            volumes=[pb.Volume(name=name, path=path) for name, path in spec.volumes],
            exclusive_volumes=spec.exclusive_volumes, release_command=spec.release_command,
            retain_releases=spec.retain_releases, replicas=spec.replicas,
        )
        if spec.pull_auth is not None:  # built elsewhere: pulled by digest from the registry
            request.pull_credentials.CopyFrom(_credentials(spec.pull_auth))
        self._connected()
        call = self.stub.Deploy(request, timeout=timeout, metadata=self.metadata, wait_for_ready=True)
        for ev in self._stream(call, cancel):
            yield _deploy_update(ev)

    def cancel(self, deployment_id: int) -> None:
        try:
            self.stub.Cancel(pb.CancelRequest(deployment_id=deployment_id), timeout=5, metadata=self.metadata)
        except grpc.RpcError:
            pass  # nothing running there any more

    def list_containers(self, app: str, *, timeout: float = 10.0) -> list[ContainerView]:
        """The app's containers; every managed container when app is empty."""
        try:
            resp = self.stub.ListContainers(pb.ListContainersRequest(app=app), timeout=timeout, metadata=self.metadata)
        except grpc.RpcError as err:
            raise self._error(err) from None
        return [
            ContainerView(
                id=c.id, name=c.name, app=c.app, deployment_id=c.deployment_id, commit_sha=c.commit_sha,
                image=c.image, state=c.state, direct_url=c.direct_url,
                created=c.create_time.ToDatetime(tzinfo=timezone.utc) if c.HasField("create_time") else None,
                serving=c.serving, url=c.url,
                health=pb.ContainerHealth.Name(c.health).removeprefix("CONTAINER_HEALTH_") if c.health else "",
                health_detail=c.health_detail, restart_count=c.restart_count,
                draining=c.draining, open_connections=c.open_connections,
                oom_kills=c.oom_kills,
                last_oom=c.last_oom_time.ToDatetime(tzinfo=timezone.utc) if c.HasField("last_oom_time") else None,
            )
            for c in resp.containers
        ]

    async def stream_logs(self, app: str, *, follow: bool, tail: int, deployment_id: int = 0,
                          since: datetime | None = None) -> AsyncIterator[LogEntry]:
        """For the API's event loop: an aio channel of its own (an aio channel belongs to one
        loop), so a follower waiting for its next line holds no thread. A release's output
        (deployment_id) the agent no longer keeps is LogsNotKept."""
        request = pb.StreamLogsRequest(app=app, follow=follow, tail=tail, deployment_id=deployment_id)
        if since is not None:
            request.since.FromDatetime(since)
        async with agent_aio_channel(self.address, self._tls) as channel:
            call = tugboat_pb2_grpc.TugboatServiceStub(channel).StreamLogs(request, metadata=self.metadata)
            try:
                async for entry in call:
                    yield LogEntry(
                        time=entry.time.ToDatetime(tzinfo=timezone.utc) if entry.HasField("time") else None,
                        text=entry.text, container_id=entry.container_id)
            except grpc.RpcError as err:
                if deployment_id and err.code() == grpc.StatusCode.NOT_FOUND:
                    raise LogsNotKept(err.details() or "no logs kept") from None
                raise self._error(err) from None

    def remove_app(self, app: str, *, delete_volumes: bool = False) -> AppRemoval:
        """Removes the app's containers, images, route and cache, and its volumes only with
        `delete_volumes`; nothing removed when the agent never ran it."""
        try:
            resp = self.stub.RemoveApp(pb.RemoveAppRequest(app=app, delete_volumes=delete_volumes),
                                       timeout=120, metadata=self.metadata)
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                return AppRemoval()
            raise self._error(err) from None
        return AppRemoval(resp.removed, tuple(resp.removed_volumes), tuple(resp.kept_volumes))

    def list_certificates(self, app: str = "", *, timeout: float = 5.0) -> list[CertificateView]:
        """The certificates of the agent's HTTPS front door (of one app, or all): no key material."""
        try:
            resp = self.stub.ListCertificates(pb.ListCertificatesRequest(app=app), timeout=timeout,
                                              metadata=self.metadata)
        except grpc.RpcError as err:
            raise self._error(err) from None
        return [_certificate_view(c) for c in resp.certificates]

    def upload_certificate(self, app: str, domain: str, certificate_pem: bytes, private_key_pem: bytes,
                           *, timeout: float = 30.0) -> CertificateView:
        """Hands the user's certificate and key to the agent, which alone keeps the key.
        CertificateRefused carries the agent's reason when it is not acceptable."""
        try:
            c = self.stub.UploadCertificate(pb.UploadCertificateRequest(
                app=app, domain=domain, certificate_pem=certificate_pem, private_key_pem=private_key_pem),
                timeout=timeout, metadata=self.metadata)
        except grpc.RpcError as err:
            if err.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION):
                raise CertificateRefused(err.details() or "certificate refused") from None
            raise self._error(err) from None
        return _certificate_view(c)

    def set_maintenance(self, app: str, enabled: bool, message: str = "", *, timeout: float = 10.0) -> None:
        """Turns the app's maintenance page on or off on the agent's front door. AppNotOnAgent
        when the agent has no route for the app (never deployed there)."""
        try:
            self.stub.SetMaintenance(pb.SetMaintenanceRequest(app=app, enabled=enabled, message=message),
                                     timeout=timeout, metadata=self.metadata)
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                raise AppNotOnAgent(err.details() or f"app {app} is not on this server") from None
            raise self._error(err) from None

    def prune(self, app: str = "", *, dry_run: bool = False, timeout: float = 300.0) -> PruneResult:
        """What retention removes on the agent (one app, or all with the engine's caches)."""
        try:
            r = self.stub.Prune(pb.PruneRequest(app=app, dry_run=dry_run), timeout=timeout, metadata=self.metadata)
        except grpc.RpcError as err:
            raise self._error(err) from None
        return PruneResult(r.dry_run, tuple(PrunedItem(
            pb.PruneItemKind.Name(i.kind).removeprefix("PRUNE_ITEM_KIND_"), i.app, i.id, i.name, i.deployment_id,
            i.size_bytes, i.reason) for i in r.items), r.bytes_freed, tuple((s.app, s.reason) for s in r.skipped))

    def list_images(self, app: str, *, timeout: float = 10.0) -> AppImages:
        """The app's platform images on the agent, each flagged when retention keeps it."""
        try:
            r = self.stub.ListImages(pb.ListImagesRequest(app=app), timeout=timeout, metadata=self.metadata)
        except grpc.RpcError as err:
            raise self._error(err) from None
        return AppImages(tuple(AgentImage(i.id, tuple(i.tags), i.commit_sha, i.retained, tuple(i.deployment_ids))
                               for i in r.images), r.retain_releases)

    def push_image(self, image: str, repository: str, auth: RegistryAuth, *, timeout: float) -> str:
        """Has the agent push `image` to the registry; returns its digest ref. A refusal (wrong
        credentials, an untrusted or unreachable registry, no such image) is an AgentError
        with the agent's reason, which never holds the password."""
        request = pb.PushImageRequest(image=image, repository=repository, credentials=_credentials(auth))
        try:
            return self.stub.PushImage(request, timeout=timeout, metadata=self.metadata).ref
        except grpc.RpcError as err:
            if err.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.FAILED_PRECONDITION,
                              grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                raise AgentError(f"{self.who}: {err.details()}") from None
            raise self._error(err) from None

    def info(self, *, timeout: float = 3.0) -> AgentInfo:
        try:
            i = self.stub.GetInfo(pb.GetInfoRequest(), timeout=timeout, metadata=self.metadata)
        except grpc.RpcError as err:
            raise self._error(err) from None
        return AgentInfo(i.agent_version, i.docker_version, i.hostname, i.running_containers)


def _run_update(ev: pb.RunCommandEvent) -> RunUpdate:
    kind = ev.WhichOneof("event")
    if kind == "started":
        return RunUpdate(container_id=ev.started.container_id)
    if kind == "exit":
        return RunUpdate(exited=True, exit_code=ev.exit.exit_code, reason=ev.exit.reason)
    return RunUpdate(line=ev.line)


async def run_command(client: AgentClient, spec: RunSpec) -> AsyncIterator[RunUpdate]:
    """RunCommand on the caller's event loop (an aio channel of its own, as stream_logs): a
    caller that goes away cancels the call, and the agent kills and removes the container."""
    request = pb.RunCommandRequest(
        app=spec.app, run_id=spec.run_id, image=spec.image, command=spec.command, env=spec.env,
        resources=pb.Resources(memory_bytes=spec.memory_limit_bytes, cpu_millis=spec.cpu_limit_millis),
        volumes=[pb.Volume(name=name, path=path) for name, path in spec.volumes],
        timeout=Duration(seconds=spec.timeout_seconds), detach=spec.detach)
    async with agent_aio_channel(client.address, client._tls) as channel:
        call = tugboat_pb2_grpc.TugboatServiceStub(channel).RunCommand(request, metadata=client.metadata)
        try:
            async for ev in call:
                yield _run_update(ev)
        except grpc.RpcError as err:
            raise client._error(err) from None


def get_run(client: AgentClient, app: str, run_id: str, *, timeout: float = 10.0) -> RunReport:
    try:
        info = client.stub.GetRun(pb.GetRunRequest(app=app, run_id=run_id), timeout=timeout,
                                  metadata=client.metadata)
    except grpc.RpcError as err:
        if err.code() == grpc.StatusCode.NOT_FOUND:
            raise UnknownRunOnAgent(err.details() or f"no run {run_id} on the agent") from None
        raise client._error(err) from None
    return RunReport(running=info.running, exit_code=info.exit.exit_code, reason=info.exit.reason,
                     lines=list(info.lines), truncated=info.truncated, ended=_when(info.end_time))


class AgentDirectory:
    """One client per server, made on first use and reused (channels are expensive).

    `lookup(name)` gives the server's (address, agent secret); a changed address or secret (a
    re-enrolled agent) gets a new client.
    """

    def __init__(self, lookup: Callable[[str], tuple[str, str]], tls: AgentTLS | None = None):
        self._lookup = lookup
        self._tls = tls
        self._clients: dict[tuple[str, str, str], AgentClient] = {}
        self._lock = threading.Lock()

    def for_server(self, name: str) -> AgentClient:
        key = (*self._lookup(name), name)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = AgentClient(key[0], key[1], self._tls, server=name)
            return client

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
