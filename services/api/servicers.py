"""gRPC servicers of the control plane: each method translates a request into one domain call."""

from __future__ import annotations

import asyncio
from datetime import timezone

from google.protobuf import empty_pb2
from serversinc.v1 import (
    api_token_service_pb2,
    api_token_service_pb2_grpc,
    app_pb2,
    app_service_pb2,
    app_service_pb2_grpc,
    deployment_service_pb2,
    deployment_service_pb2_grpc,
    git_service_pb2,
    git_service_pb2_grpc,
    server_service_pb2,
    server_service_pb2_grpc,
)

from services.api import converters as conv
from services.api import run_converters as run_conv
from services.api import names
from services.api.errors import translate_errors
from services.apps import status as app_status
from services.apps.spec import SETTABLE
from services.core import paging
from services.core import validation
from services.core.errors import DeploymentNotFound, InvalidArgument
from services.deployments.feed import Feeds
from services.deployments.service import DeploymentView
from services.platform import Platform
from services.retention import converters as conv_retention
from services.retention.prune import prune_server
from services.servers import converters as enrollment
from services.servers.rotation import rotate_certificate
from services.servers.removal import delete_server


def _page_by_name(items: list, key, request, *, default: int, maximum: int) -> tuple[list, str]:
    """One page of a list the domain returns whole (an agent's containers, a remote's branches),
    ordered by `key`; the token is the last key served, so a page never repeats or skips an item
    that existed on both calls."""
    size = paging.page_size(request.page_size, default=default, maximum=maximum)
    after = paging.decode(request.page_token).get("after", "")
    rest = sorted((i for i in items if key(i) > after), key=key)
    page = rest[:size]
    return page, paging.encode({"after": key(page[-1])}) if len(rest) > size else ""


class AppServicer(app_service_pb2_grpc.AppServiceServicer):
    def __init__(self, platform: Platform):
        self.p = platform

    def _to_pb(self, apps):
        info = app_status.overview(self.p.db, apps)
        servers = self.p.apps.servers_by_app(apps)
        return [
            conv.app_to_pb(a, info[a.id].status, DeploymentView(info[a.id].serving) if info[a.id].serving else None,
                           secret_keys=self.p.apps.secret_env_keys(a), view=info[a.id], servers=servers.get(a.id))
            for a in apps
        ]

    @translate_errors
    def CreateApp(self, request, context):
        return self._to_pb([self.p.apps.create(conv.spec_from_pb(request.app))])[0]

    @translate_errors
    def GetApp(self, request, context):
        return self._to_pb([self.p.apps.get(names.parse_app(request.name))])[0]

    @translate_errors
    def ListApps(self, request, context):
        apps, token = self.p.apps.list(page_size=request.page_size, page_token=request.page_token)
        return app_service_pb2.ListAppsResponse(apps=self._to_pb(apps), next_page_token=token)

    @translate_errors
    def UpdateApp(self, request, context):
        paths = list(request.update_mask.paths)
        if not paths:
            raise InvalidArgument("update_mask is empty: name the fields to change (an empty mask would reset them all)")
        bad = [p for p in paths if p not in SETTABLE]
        if bad:
            raise InvalidArgument(f"cannot update {', '.join(bad)}: settable fields are {', '.join(SETTABLE)}")
        spec = conv.spec_from_pb(request.app)
        changes = {p: getattr(spec, p) for p in paths}
        return self._to_pb([self.p.apps.update(names.parse_app(request.app.name, "app.name"), changes)])[0]

    @translate_errors
    def DeleteApp(self, request, context):
        removal = self.p.delete_app(names.parse_app(request.name), delete_volumes=request.delete_volumes)
        return app_service_pb2.DeleteAppResponse(removed_volumes=removal.removed_volumes,
                                                 kept_volumes=removal.kept_volumes)

    @translate_errors
    def ListAppContainers(self, request, context):
        containers, down = self.p.app_containers_across(names.parse_app(request.parent, "parent"))
        page, token = _page_by_name(containers, lambda c: f"{c.name}\n{c.server}", request, default=50, maximum=500)
        return app_service_pb2.ListAppContainersResponse(
            containers=[conv.container_to_pb(c) for c in page], next_page_token=token,
            unreachable=[f"{server}: {why}" for server, why in down.items()])

    @translate_errors
    def GetAppWebhook(self, request, context):
        app = names.parse_app(request.name)
        url, secret, notification_secret = self.p.apps.webhook(app, self.p.settings.webhook_url)
        return app_service_pb2.AppWebhook(app=app, url=url, secret=secret, notification_secret=notification_secret)

    @translate_errors
    def UploadAppCertificate(self, request, context):
        app = self.p.apps.get(names.parse_app(request.name))
        domain = validation.domain(request.domain)
        if domain not in (app.domains or []):
            raise InvalidArgument(f"{domain} is not a domain of app {app.name}: add it first "
                                  "(serversinc apps update --domain) and deploy", field="domain")
        view = self.p.upload_certificate(app, domain, request.certificate_pem, request.private_key_pem)
        return conv.certificate_to_pb(view)

    @translate_errors
    def SetAppMaintenance(self, request, context):
        """Every server applies it first (so a stored mode is one that serves), then it is stored."""
        name = names.parse_app(request.name)
        message = validation.maintenance_message(request.message) if request.enabled else ""
        return self._to_pb([self.p.set_maintenance(name, request.enabled, message)])[0]

    # One-off commands (services.runs): each a call into the run service.
    @translate_errors
    async def RunAppCommand(self, request, context):
        async for item in self.p.runs.run(names.parse_app(request.name), list(request.command),
                                          detach=request.detach, timeout_seconds=request.timeout_seconds):
            yield run_conv.run_event(item)

    @translate_errors
    def ListAppRuns(self, request, context):
        runs, token = self.p.runs.list(names.parse_app(request.parent, "parent"), page_size=request.page_size,
                                       page_token=request.page_token)
        return app_service_pb2.ListAppRunsResponse(runs=[run_conv.run_to_pb(r) for r in runs], next_page_token=token)

    @translate_errors
    def GetAppRun(self, request, context):
        return run_conv.run_to_pb(self.p.runs.get(request.name))

    @translate_errors
    def GetAppRunOutput(self, request, context):
        return run_conv.output_to_pb(request.name, self.p.runs.output(request.name))

    @translate_errors
    async def StreamAppLogs(self, request, context):
        app = names.parse_app(request.name)
        deployment_id = 0
        if request.deployment:
            parsed = names.parse_deployment(request.deployment, "deployment")
            view = await asyncio.to_thread(self.p.deployments.get, parsed.id)
            if view.row.app.name != app or parsed.app not in (None, app):
                raise DeploymentNotFound(f"deployment {request.deployment!r} of app {app!r} not found")
            deployment_id = parsed.id
        since = request.since_time.ToDatetime(tzinfo=timezone.utc) if request.HasField("since_time") else None
        tail = request.tail or (0 if since else 100)  # since alone: every line from then on
        async for entry in self.p.app_logs(app, follow=request.follow, tail=tail,
                                           deployment_id=deployment_id, since=since, server=request.server):
            yield app_pb2.LogLine(time=conv.ts(entry.time), text=entry.text, container_id=entry.container_id,
                                  server=entry.server)

    @translate_errors
    def SetAppEnv(self, request, context):
        """The env change and, with deploy, its CONFIG deployment: one transaction (config_release)."""
        app, view = self.p.config_releases.set_env(
            names.parse_app(request.name), env=dict(request.env), secret_env=dict(request.secret_env),
            unset=list(request.unset_names), deploy=request.deploy)
        return app_service_pb2.SetAppEnvResponse(
            app=self._to_pb([app])[0], deployment=conv.deployment_to_pb(view) if view else None)


class DeploymentServicer(deployment_service_pb2_grpc.DeploymentServiceServicer):
    """Unary methods are synchronous (grpc.aio runs them in its thread pool); WatchDeployment is
    a coroutine on the loop, so an open watch holds no thread (services.deployments.feed)."""

    def __init__(self, platform: Platform, feeds: Feeds):
        self.p = platform
        self.feeds = feeds

    def _get(self, name: str, field: str = "name") -> DeploymentView:
        """The named deployment; one named under another app does not exist (NOT_FOUND)."""
        parsed = names.parse_deployment(name, field)
        view = self.p.deployments.get(parsed.id)
        if parsed.app is not None and view.row.app.name != parsed.app:
            raise DeploymentNotFound(f"deployment {name!r} not found")
        return view

    def _source(self, app: str, name: str, field: str) -> str:
        """A source deployment as the domain takes it (its id), checked to be the app's."""
        if not name:
            return ""
        parsed = names.parse_deployment(name, field)
        if parsed.app not in (None, app):
            raise DeploymentNotFound(f"deployment {name!r} of app {app!r} not found")
        return str(parsed.id)

    @translate_errors
    async def CreateDeployment(self, request, context):
        # On the loop: the create waits for its group commit (services.db.group_commit) holding no
        # thread, and a thread pool hop per call was a visible part of its cost under load.
        app = names.parse_app(request.parent, "parent")
        view = await self.p.deployments.create_async(
            app, rebuild=request.rebuild, commit_sha=request.commit_sha,
            trigger=conv.trigger_from_pb(request.trigger),
            source_deployment=self._source(app, request.source_deployment, "source_deployment"),
            request_id=request.request_id, delivery_id=request.delivery_id, pusher=request.pusher,
            commit_message=request.commit_message, supersede_queued=request.supersede_queued,
            before_commit_sha=request.before_commit_sha,
        )
        return conv.deployment_to_pb(view)

    @translate_errors
    def GetDeployment(self, request, context):
        return conv.deployment_to_pb(self._get(request.name))

    @translate_errors
    def ListDeployments(self, request, context):
        app = names.parse_parent(request.parent)
        views, token = self.p.deployments.list(app or "", page_size=request.page_size, page_token=request.page_token)
        return deployment_service_pb2.ListDeploymentsResponse(
            deployments=[conv.deployment_to_pb(v) for v in views], next_page_token=token
        )

    @translate_errors
    def CancelDeployment(self, request, context):
        return conv.deployment_to_pb(self.p.deployments.cancel(self._get(request.name).row.id))

    @translate_errors
    def RollbackApp(self, request, context):
        app = names.parse_app(request.name)
        view = self.p.deployments.rollback(app, self._source(app, request.deployment, "deployment"))
        return conv.deployment_to_pb(view)

    @translate_errors
    async def WatchDeployment(self, request, context):
        view = await asyncio.get_running_loop().run_in_executor(None, self._get, request.name)
        async for event in self.feeds.follow(view.row.id, request.after_seq):
            yield conv.event_to_pb(event, view.row.app.name)


class GitServicer(git_service_pb2_grpc.GitServiceServicer):
    def __init__(self, platform: Platform):
        self.p = platform

    @translate_errors
    def ResolveCommit(self, request, context):
        sha = self.p.git.resolve(request.repo_url, request.ref or "main")
        return git_service_pb2.Commit(sha=sha)

    @translate_errors
    def ListBranches(self, request, context):
        page, token = _page_by_name(self.p.git.branches(request.repo_url), lambda b: b.name, request,
                                    default=100, maximum=1000)
        return git_service_pb2.ListBranchesResponse(branches=[conv.branch_to_pb(b) for b in page], next_page_token=token)


class ServerServicer(server_service_pb2_grpc.ServerServiceServicer):
    def __init__(self, platform: Platform):
        self.p = platform

    @translate_errors
    def CreateServer(self, request, context):
        server, join_token = self.p.servers.create(request.name, request.address,
                                                   conv.whole_seconds(request.join_token_ttl, "join_token_ttl"))
        msg = conv.server_to_pb(server, None, "not registered yet")
        msg.join_token = join_token
        msg.join_token_expire_time.CopyFrom(conv.ts(server.join_token_expires_at))
        msg.join_command = enrollment.join_command(server.address, self.p.settings.api_address, join_token)
        enrollment.add_ca_fingerprint(msg, self.p.servers.issuer)
        return msg

    @translate_errors
    def RegisterServer(self, request, context):
        issued = []
        server = self.p.servers.register(request.join_token, request.agent_secret, request.address,
                                         request.csr_pem, issued)
        return enrollment.with_certificate(conv.server_to_pb(server, None, ""), issued)

    @translate_errors
    def RotateServerCertificate(self, request, context):
        server = rotate_certificate(self.p.servers, self.p.agents, request.name)
        return conv.server_to_pb(server, None, "")

    @translate_errors
    def GetServer(self, request, context):
        server, info, error = self.p.server_status(request.name)
        return conv.server_to_pb(server, info, error)

    @translate_errors
    def ListServers(self, request, context):
        servers, token = self.p.list_servers(page_size=request.page_size, page_token=request.page_token)
        return server_service_pb2.ListServersResponse(
            servers=[conv.server_to_pb(*status) for status in self.p.server_statuses(servers)], next_page_token=token
        )


    @translate_errors
    def DeleteServer(self, request, context):
        delete_server(self.p.db, request.name.removeprefix("servers/"))
        return empty_pb2.Empty()

    @translate_errors
    def PruneServer(self, request, context):
        result = prune_server(self.p.db, self.p.agents, request.name, request.app, dry_run=request.dry_run)
        return conv_retention.prune_to_pb(request.name, result)


class ApiTokenServicer(api_token_service_pb2_grpc.ApiTokenServiceServicer):
    def __init__(self, platform: Platform):
        self.p = platform

    @translate_errors
    def CreateApiToken(self, request, context):
        token, secret = self.p.tokens.create(request.name)
        return conv.token_to_pb(token, secret)

    @translate_errors
    def ListApiTokens(self, request, context):
        tokens, next_token = self.p.tokens.list(page_size=request.page_size, page_token=request.page_token)
        return api_token_service_pb2.ListApiTokensResponse(
            api_tokens=[conv.token_to_pb(t) for t in tokens], next_page_token=next_token)

    @translate_errors
    def DeleteApiToken(self, request, context):
        self.p.tokens.revoke(request.name)
        return api_token_service_pb2.DeleteApiTokenResponse()
