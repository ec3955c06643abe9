"""The composition root: builds the control plane's parts from Settings and wires them together.

Also holds the few use cases that span apps and their agent (delete, containers, logs, servers).
"""

from __future__ import annotations

import logging
import os

from services.agents import fanout
from services.agents.client import AgentDirectory, AgentTLS
from services.agents.port import AgentError, AppRemoval
from services.apps import across
from services.apps import repository as apps_repo
from services.apps.config_release import ConfigReleases
from services.apps.moves import Moves
from services.apps.service import AppService
from services.certificates import relay as certificate_relay
from services.config import LOCAL_SERVER, Settings
from services.core import paging
from services.core.errors import ServerNotFound, ServerUnreachable
from services.db.models import Server, utcnow
from services.db import locks
from services.db.pubsub import Bus
from services.db.session import Database
from services.deployments.events import EventLog
from services.deployments.image_transfer import ImageTransfer
from services.deployments.pipeline import DeployPipeline
from services.deployments.recorder import Recorder
from services.deployments import repository as deployments_repo
from services.deployments.service import DeploymentService
from services.gitops.resolver import GitResolver
from services.health.monitor import HealthMonitor
from services.jobs.cancels import CancelRegistry
from services.jobs.queue import JobQueue
from services.jobs.worker import Worker
from services.runs.service import RunService
from services.registries.service import RegistryService
from services.notifications.sender import NotificationSender
from services.observability.metrics import Metrics
from services.security.api_tokens import ApiTokenService
from services.security.files import write_private
from services.security.secretbox import KEY_ENV, SecretBox, SecretBoxError
from services.servers.issuer import AgentIssuer
from services.servers.service import ServerService
from services.retention.rollback import RollbackGuard
from services.retention.events import EventRetention

log = logging.getLogger(__name__)

# Asking a server's agent for its state (GetServer, ListServers): the deadline of one agent, and how
# many agents one call asks at the same time.
STATUS_SECONDS = 3.0


class SecretKeyMismatch(Exception):
    """This process's secret key cannot read the secrets stored in its database."""


class Platform:
    def __init__(self, settings: Settings, *, git: GitResolver | None = None):
        self.settings = settings
        settings.home.mkdir(parents=True, exist_ok=True)
        self.db = Database(settings.database_url)
        self.box = SecretBox.from_env_or_file(settings.home)
        # Replicas on one PostgreSQL database wake each other through it (nothing on SQLite).
        self.bus = Bus(self.db.engine)
        self.events = EventLog(self.db, bus=self.bus)
        self.queue = JobQueue(self.db, lease_seconds=settings.job_lease_seconds, bus=self.bus)
        self.cancels = CancelRegistry(self.bus)
        self.cancels.on_resync(self._recheck_cancels)
        self.apps = AppService(self.db, self.box)
        self.servers = ServerService(self.db, self.box, AgentIssuer(settings.certs_dir))  # signs agents' CSRs
        self.tokens = ApiTokenService(self.db)
        # The registry releases are pushed to and pulled from by digest (build once, run everywhere).
        self.registries = RegistryService(self.db, self.box)
        self.deployments = DeploymentService(self.db, self.events, self.queue, self.cancels)
        self.config_releases = ConfigReleases(self.db, self.box, self.deployments)
        self.apps.moves = Moves(self.deployments)  # UpdateApp queues a move in its transaction
        self.git = git or GitResolver(timeout=settings.resolve_timeout)
        tls = AgentTLS.from_dir(settings.certs_dir) if settings.agent_tls else None
        if tls is None:
            log.warning("talking to agents WITHOUT TLS (no certificates in %s)", settings.certs_dir)
        self.agents = AgentDirectory(self._agent_address_and_secret, tls)
        self.runs = RunService(self.db, self.box, self.apps, self.agents)
        self.deployments.rollback_guard = RollbackGuard(self.db, self.agents)
        self.event_retention = EventRetention(self.db, keep=settings.event_retention_deployments,
                                              period=settings.event_retention_period_seconds)
        self.notifications = NotificationSender(self.db, self.box, backoff_seconds=settings.notify_backoff_seconds)
        # Each round also relays the agents' certificate states into the App read model.
        self.health = HealthMonitor(self.db, self._containers_of, period=settings.health_poll_seconds,
                                    on_announced=self.notifications.wake,
                                    certificates_of=certificate_relay.certificates_of(self.agents))
        self.metrics = Metrics(queue_depth=self._queue_depth, agents_up=self._agents_up,
                               certificates=lambda: certificate_relay.metric_rows(self.db))
        self.metrics_port = 0
        self.pipeline = DeployPipeline(
            settings, lambda claim: Recorder(self.db, self.events, self.queue, claim, self._deployment_finished),
            self.git, self.agents, self.box, transfer=ImageTransfer(self.db, self.box),
        )
        self.worker = Worker(self.queue, self.pipeline.run, self.cancels, threads=settings.workers)

    def bootstrap(self) -> None:
        """Schema, the local server row, and (single-process SQLite) reclaiming interrupted jobs."""
        self.db.create_schema()
        self._check_secret_key()
        # Replicas starting at once take turns (PostgreSQL): one adds the local server row and the
        # first API token, the others then find them.
        with locks.held(self.db.engine, locks.Lock.BOOTSTRAP):
            with self.db.session() as s:
                local = apps_repo.get_server(s, LOCAL_SERVER)
                if local is None:
                    s.add(Server(name=LOCAL_SERVER, address=self.settings.local_agent_address))
                elif local.address != self.settings.local_agent_address:
                    local.address = self.settings.local_agent_address
            self.tokens.bootstrap(self.settings.token_file)
            self._local_join_token()
        if self.db.url.startswith("sqlite"):
            # SQLite means one control-plane process: any claim in the table belongs to a process
            # that is gone, so its deployments resume now instead of after the lease.
            self.queue.release_all()

    def _check_secret_key(self) -> None:
        """Refuses to start with a key that cannot read the secrets already stored: replicas
        sharing a database must share SERVERSINC_SECRET_KEY, and one that made a key of its own
        would otherwise fail later, at the first deploy or webhook that needs a secret."""
        with self.db.read() as s:
            stored = apps_repo.any_stored_secret(s)
        if stored is None:
            return
        try:
            self.box.decrypt(stored)
        except SecretBoxError:
            raise SecretKeyMismatch(
                "the database holds secrets this key cannot decrypt: every control-plane replica of one "
                f"database must use the same {KEY_ENV} (this one read its key from "
                f"{'the environment' if os.environ.get(KEY_ENV) else self.settings.home / 'secret.key'})") from None

    def _local_join_token(self) -> None:
        """A usable one-time join token for the local agent in the home: the agent (re-)registers
        with its secret, so a local agent that lost its .env is enrolled again without any step.
        A token still unused is kept: a second replica starting on the same home must not void
        the one the first wrote (a new token replaces the old one's hash)."""
        path = self.settings.home / "local-join-token"
        current = path.read_text().strip() if path.exists() else ""
        if not self.servers.join_token_usable(LOCAL_SERVER, current):
            write_private(path, self.servers.new_join_token(LOCAL_SERVER) + "\n")

    def start(self) -> None:
        self.bootstrap()
        self.bus.start()
        # Listening before the first claim: a job created on another replica from now on wakes
        # this one's workers (one created before is found by their first claim).
        if not self.bus.wait_listening(10):
            log.warning("not yet listening for other replicas' notifications: relying on polls until it connects")
        self.worker.start()
        self.notifications.start()
        self.health.start()
        self.event_retention.start()
        if self.settings.metrics_address:
            port = self.metrics.serve(self.settings.metrics_address)
            self.metrics_port = port
            log.info("metrics at http://%s:%s/metrics", self.settings.metrics_address.rpartition(":")[0], port)

    def stop(self) -> None:
        self.metrics.close()
        self.health.stop()
        self.event_retention.stop()
        self.notifications.stop()
        self.worker.stop()
        self.bus.stop()
        self.agents.close()
        self.db.dispose()

    def _recheck_cancels(self) -> None:
        with self.db.read() as s:
            wanted = deployments_repo.cancel_requested_among(s, self.cancels.running())
        for deployment_id in wanted:
            self.cancels.cancel(deployment_id)

    def _deployment_finished(self, finished) -> None:
        self.metrics.deployment_finished(finished)
        self.notifications.wake()

    def _queue_depth(self) -> int:
        with self.db.read() as s:
            return deployments_repo.count_queued(s)

    def _agents_up(self) -> list[tuple[str, bool]]:
        """Whether each server's agent answers, all asked at once (server_statuses): a scrape
        with several agents down waits one deadline, not one per agent."""
        with self.db.read() as s:
            servers = list(apps_repo.list_servers(s, after="", limit=1000))
        return [(server.name, info is not None) for server, info, _ in self.server_statuses(servers)]

    def _containers_of(self, server_name: str, timeout: float):
        containers = self.agents.for_server(server_name).list_containers("", timeout=timeout)
        self.servers.seen([server_name])  # the health monitor's round: it answered
        return containers

    def _agent_address_and_secret(self, server_name: str) -> tuple[str, str]:
        with self.db.read() as s:
            server = apps_repo.get_server(s, server_name)
        if server is None:
            raise ServerNotFound(f"server {server_name!r} not found")
        return server.address, self.servers.agent_secret(server) or self.settings.local_agent_secret

    # Use cases that span an app and its agent.

    def delete_app(self, name: str, *, delete_volumes: bool = False) -> AppRemoval:
        """Check, then remove from the agents (every server the app runs on), then delete the
        row; returns what they removed. The app's named volumes go only with `delete_volumes`: otherwise they are
        kept on the server and named, so a mistaken delete loses no data.

        Refused with DEPLOYMENT_IN_PROGRESS (FAILED_PRECONDITION) while a deployment of the app
        runs, before anything is touched, so the serving release keeps serving. Queued
        deployments are deleted with the app. The agent goes first so that an unreachable agent
        leaves the app to be deleted again; a deployment that started between the check and the
        row's deletion makes the delete fail at the end (delete again once it finished).
        """
        app = self.apps.get(name)
        self.apps.ensure_deletable(name)
        removals = []
        for server in self.apps.runs_on(app):  # every server of the app (services.apps.placement)
            try:
                removals.append(self.agents.for_server(server).remove_app(app.name, delete_volumes=delete_volumes))
            except AgentError as err:
                raise ServerUnreachable(f"could not remove {name!r} from server {server!r}: {err}") from None
        self.apps.delete(name)
        return AppRemoval(containers=sum(r.containers for r in removals),
                          removed_volumes=tuple(dict.fromkeys(v for r in removals for v in r.removed_volumes)),
                          kept_volumes=tuple(dict.fromkeys(v for r in removals for v in r.kept_volumes)))

    def app_containers(self, name: str):
        """The app's containers on every server it runs on, each naming its server."""
        return self.app_containers_across(name)[0]

    def app_containers_across(self, name: str):
        """(containers, {server: why} of the servers that did not answer): services.apps.across."""
        return across.containers(self.apps, self.agents, name)

    def set_maintenance(self, name: str, enabled: bool, message: str):
        """Applied on every server of the app, then stored (services.apps.across)."""
        return across.set_maintenance(self.apps, self.agents, name, enabled, message)

    def upload_certificate(self, app, domain: str, certificate_pem: bytes, private_key_pem: bytes):
        """The user's certificate to every server of the app (services.apps.across)."""
        return across.upload_certificate(
            self.apps, self.agents, app, domain, certificate_pem, private_key_pem,
            lambda reported: certificate_relay.store_report(self.db, {app.name: app.id}, reported))

    async def app_logs(self, name: str, *, follow: bool, tail: int, deployment_id: int = 0,
                       since=None, server: str = ""):
        """The serving release's output (or one release's: live, else as its agent archived it)
        on every server of the app (or `server`), relayed on the caller's event loop: a
        `--follow` that waits for its next line holds no thread (services.apps.across)."""
        async for entry in across.logs(self.apps, self.agents, name, follow=follow, tail=tail,
                                       deployment_id=deployment_id, since=since, server=server):
            yield entry

    def list_servers(self, *, page_size: int, page_token: str):
        size = paging.page_size(page_size, default=50, maximum=500)
        after = paging.decode(page_token).get("after", "")
        with self.db.read() as s:
            servers = apps_repo.list_servers(s, after=after, limit=size + 1)
        more = len(servers) > size
        servers = servers[:size]
        return servers, paging.encode({"after": servers[-1].name}) if more else ""

    def server_status(self, name: str):
        """(server, AgentInfo or None, why not) of one server, its agent asked now."""
        with self.db.read() as s:
            server = apps_repo.get_server(s, name)
        if server is None:
            raise ServerNotFound(f"server {name!r} not found")
        return self.server_statuses([server])[0]

    def server_statuses(self, servers: list[Server]) -> list[tuple]:
        """(server, AgentInfo or None, why not) per server, in order. The agents are asked at the
        same time (services.agents.fanout, each with the STATUS_SECONDS deadline), so a page with
        several servers down takes one deadline, not one per server. Those that answer are
        recorded as seen; their last_seen_at in the result is this read."""
        answers = fanout.each(servers, lambda server: self.agents.for_server(server.name).info(timeout=STATUS_SECONDS))
        now = utcnow()
        reached = [server for server, info, _ in answers if info is not None]
        if reached:
            self.servers.seen([server.name for server in reached], now)
        for server in reached:
            server.last_seen_at = now
        return [(server, info, str(err) if err is not None else "") for server, info, err in answers]
