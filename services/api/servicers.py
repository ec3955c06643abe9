"""gRPC servicers of the control plane: each method translates a request into one domain call."""

from __future__ import annotations

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
from services.api.errors import translate_errors
from services.apps import status as app_status
from services.apps.spec import SETTABLE
from services.core import paging
from services.core.errors import InvalidArgument
from services.deployments.service import DeploymentView, parse_name
from services.platform import Platform


class AppServicer(app_service_pb2_grpc.AppServiceServicer):
    def __init__(self, platform: Platform):
        self.p = platform

    def _to_pb(self, apps):
        info = app_status.overview(self.p.db, apps)
        return [
            conv.app_to_pb(a, info[a.id][0], DeploymentView(info[a.id][1]) if info[a.id][1] is not None else None,
                           secret_keys=self.p.apps.secret_env_keys(a))
            for a in apps
        ]

    @translate_errors
    def CreateApp(self, request, context):
        return self._to_pb([self.p.apps.create(conv.spec_from_pb(request.app))])[0]

    @translate_errors
    def GetApp(self, request, context):
        return self._to_pb([self.p.apps.get(request.name)])[0]

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
        return self._to_pb([self.p.apps.update(request.app.name, changes)])[0]

    @translate_errors
    def DeleteApp(self, request, context):
        self.p.delete_app(request.name)
        return app_service_pb2.DeleteAppResponse()

    @translate_errors
    def ListAppContainers(self, request, context):
        containers = self.p.app_containers(request.name)
        return app_service_pb2.ListAppContainersResponse(
            containers=[
                app_pb2.Container(
                    id=c.id, name=c.name, app=c.app, deployment=f"deployments/{c.deployment_id}" if c.deployment_id else "",
                    commit_sha=c.commit_sha, image=c.image, state=c.state, direct_url=c.direct_url,
                    create_time=conv.ts(c.created),
                )
                for c in containers
            ]
        )

    @translate_errors
    def GetAppWebhook(self, request, context):
        url, secret, notification_secret = self.p.apps.webhook(request.name, self.p.settings.webhook_url)
        return app_service_pb2.AppWebhook(app=request.name, url=url, secret=secret,
                                          notification_secret=notification_secret)

    @translate_errors
    def StreamAppLogs(self, request, context):
        for entry in self.p.app_logs(request.name, follow=request.follow, tail=request.tail or 100):
            if not context.is_active():
                return
            yield app_pb2.LogLine(time=conv.ts(entry.time), text=entry.text, container_id=entry.container_id)


class DeploymentServicer(deployment_service_pb2_grpc.DeploymentServiceServicer):
    def __init__(self, platform: Platform):
        self.p = platform

    @translate_errors
    def CreateDeployment(self, request, context):
        view = self.p.deployments.create(
            request.app, rebuild=request.rebuild, commit_sha=request.commit_sha,
            trigger=conv.trigger_from_pb(request.trigger), source_deployment=request.source_deployment,
            request_id=request.request_id, delivery_id=request.delivery_id, pusher=request.pusher,
            commit_message=request.commit_message, supersede_queued=request.supersede_queued,
        )
        return conv.deployment_to_pb(view)

    @translate_errors
    def GetDeployment(self, request, context):
        return conv.deployment_to_pb(self.p.deployments.get(parse_name(request.name)))

    @translate_errors
    def ListDeployments(self, request, context):
        views, token = self.p.deployments.list(request.app, page_size=request.page_size, page_token=request.page_token)
        return deployment_service_pb2.ListDeploymentsResponse(
            deployments=[conv.deployment_to_pb(v) for v in views], next_page_token=token
        )

    @translate_errors
    def CancelDeployment(self, request, context):
        return conv.deployment_to_pb(self.p.deployments.cancel(parse_name(request.name)))

    @translate_errors
    def RollbackApp(self, request, context):
        view = self.p.deployments.rollback(request.app, request.deployment)
        return conv.deployment_to_pb(view)

    @translate_errors
    def WatchDeployment(self, request, context):
        events = self.p.deployments.watch(parse_name(request.name), request.after_seq, is_active=context.is_active)
        for event in events:
            yield conv.event_to_pb(event)


class GitServicer(git_service_pb2_grpc.GitServiceServicer):
    def __init__(self, platform: Platform):
        self.p = platform

    @translate_errors
    def ResolveCommit(self, request, context):
        sha = self.p.git.resolve(request.repo_url, request.ref or "main")
        return git_service_pb2.Commit(sha=sha)

    @translate_errors
    def ListBranches(self, request, context):
        size = paging.page_size(request.page_size, default=100, maximum=1000)
        after = paging.decode(request.page_token).get("after", "")
        branches = [b for b in self.p.git.branches(request.repo_url) if b.name > after]
        page = branches[:size]
        token = paging.encode({"after": page[-1].name}) if len(branches) > size else ""
        return git_service_pb2.ListBranchesResponse(branches=[conv.branch_to_pb(b) for b in page], next_page_token=token)


class ServerServicer(server_service_pb2_grpc.ServerServiceServicer):
    def __init__(self, platform: Platform):
        self.p = platform

    @translate_errors
    def CreateServer(self, request, context):
        server, join_token = self.p.servers.create(request.name, request.address, request.join_token_ttl_seconds)
        msg = conv.server_to_pb(server, None, "not registered yet")
        msg.join_token = join_token
        msg.join_token_expire_time.CopyFrom(conv.ts(server.join_token_expires_at))
        msg.join_command = (f"tugboat --listen {server.address} --join {self.p.settings.api_address} "
                            f"--join-token {join_token}")
        return msg

    @translate_errors
    def RegisterServer(self, request, context):
        server = self.p.servers.register(request.join_token, request.agent_secret, request.address)
        return conv.server_to_pb(server, None, "")

    @translate_errors
    def GetServer(self, request, context):
        server, info, error = self.p.server_status(request.name)
        return conv.server_to_pb(server, info, error)

    @translate_errors
    def ListServers(self, request, context):
        servers, token = self.p.list_servers(page_size=request.page_size, page_token=request.page_token)
        return server_service_pb2.ListServersResponse(
            servers=[conv.server_to_pb(*self.p.server_status(s.name)) for s in servers], next_page_token=token
        )


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
