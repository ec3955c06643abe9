"""The dashboard's one gRPC client of the control plane, cached across reruns, and its error banner.

Why a wrapper rather than raw stubs in the pages: every page must turn a failed call into a readable
banner (never a traceback), and a down control plane must read the same everywhere. So each method
here makes its call and raises `client.errors.ApiError` (with the code, the server's message and its
AIP-193 reason) instead of `grpc.RpcError`. Address, token and pagination are the client library's,
so `SERVERSINC_API` / `SERVERSINC_TOKEN` / `.serversinc/api-token` work as for the CLI, including a
comma-separated list of API replicas (the connection goes to the first that answers, see
client.addresses); a setting that cannot be read is a banner on every page, like a down control plane.

(Not named client.py: `streamlit run dashboard/app.py` puts dashboard/ first on sys.path, where a
client.py would hide the `client` package.)
"""

from __future__ import annotations

from typing import Iterator

import grpc
import streamlit as st
from google.protobuf import field_mask_pb2
from serversinc.v1 import (
    app_pb2,
    app_service_pb2,
    deployment_pb2,
    deployment_service_pb2,
    server_service_pb2,
)

from client.addresses import AddressError
from client.connection import Connection, TrustError, load_root_ca, load_token, resolve_address
from client.errors import ApiError
from client.pages import all_pages
from common.defaults import API_ENV

# A dashboard page waits on its calls, so unary calls get a deadline far shorter than the CLI's:
# a wedged control plane should turn into a banner within seconds, not hang the page.
UNARY_TIMEOUT_SECONDS = 15.0


class Client:
    """One method per RPC the dashboard makes; each raises ApiError instead of grpc.RpcError."""

    def __init__(self, connection: Connection):
        self.connection = connection
        self.address = connection.address

    def _call(self, method, *args, **kw):
        try:
            return method(*args, **kw)
        except grpc.RpcError as err:
            raise ApiError.from_rpc(err, self.address) from None

    # Apps -------------------------------------------------------------------------------------------
    def list_apps(self) -> list[app_pb2.App]:
        return self._call(all_pages, self.connection.apps.ListApps,
                          lambda token: app_service_pb2.ListAppsRequest(page_size=500, page_token=token), "apps")

    def get_app(self, name: str) -> app_pb2.App:
        return self._call(self.connection.apps.GetApp, app_service_pb2.GetAppRequest(name=name))

    def create_app(self, app: app_pb2.App) -> app_pb2.App:
        return self._call(self.connection.apps.CreateApp, app_service_pb2.CreateAppRequest(app=app))

    def update_app(self, app: app_pb2.App, paths: list[str]) -> app_pb2.App:
        request = app_service_pb2.UpdateAppRequest(app=app, update_mask=field_mask_pb2.FieldMask(paths=paths))
        return self._call(self.connection.apps.UpdateApp, request)

    def delete_app(self, name: str) -> None:
        self._call(self.connection.apps.DeleteApp, app_service_pb2.DeleteAppRequest(name=name))

    def list_containers(self, name: str) -> tuple[list[app_pb2.Container], list[str]]:
        """The app's containers on all its servers, and "server: why" for each that did not answer."""
        resp = self._call(self.connection.apps.ListAppContainers,
                          app_service_pb2.ListAppContainersRequest(parent=f"apps/{name}"))
        return list(resp.containers), list(resp.unreachable)

    def app_logs(self, name: str, tail: int = 100, timeout: float = 10.0,
                 deployment: str = "") -> list[app_pb2.LogLine]:
        """The last `tail` lines, not followed: a page shows a snapshot and a refresh button. With
        `deployment`, that release's lines (also after it was replaced: its server archived them)."""
        request = app_service_pb2.StreamAppLogsRequest(name=name, tail=tail, follow=False,
                                                       deployment=deployment)
        try:
            return list(self.connection.apps.StreamAppLogs(request, timeout=timeout))
        except grpc.RpcError as err:
            raise ApiError.from_rpc(err, self.address) from None

    # Deployments ------------------------------------------------------------------------------------
    def create_deployment(self, app: str, *, rebuild: bool = False,
                          source_deployment: str = "") -> deployment_pb2.Deployment:
        trigger = (deployment_pb2.DEPLOYMENT_TRIGGER_ROLLBACK if source_deployment
                   else deployment_pb2.DEPLOYMENT_TRIGGER_DASHBOARD)
        request = deployment_service_pb2.CreateDeploymentRequest(
            parent=f"apps/{app}", rebuild=rebuild, trigger=trigger, source_deployment=source_deployment)
        return self._call(self.connection.deployments.CreateDeployment, request)

    def get_deployment(self, name: str) -> deployment_pb2.Deployment:
        return self._call(self.connection.deployments.GetDeployment,
                          deployment_service_pb2.GetDeploymentRequest(name=name))

    def list_deployments(self, app: str = "", page_size: int = 20) -> list[deployment_pb2.Deployment]:
        resp = self._call(self.connection.deployments.ListDeployments,
                          deployment_service_pb2.ListDeploymentsRequest(parent=f"apps/{app or '-'}", page_size=page_size))
        return list(resp.deployments)

    def watch(self, name: str, after_seq: int, timeout: float) -> Iterator[deployment_pb2.DeploymentEvent]:
        """Events after `after_seq`, for at most `timeout` seconds; ends quietly at the deadline.

        A page cannot block on a stream that lasts the whole deploy, so it reads in short slices and
        resumes from the last seq it kept: the deadline is the normal end of a slice, not an error.
        So is a connection lost after events arrived (the replica went away): the next slice resumes
        on whichever replica answers. Lost before any event, the control plane is down: a banner.
        """
        stream = self.connection.deployments.WatchDeployment(
            deployment_service_pb2.WatchDeploymentRequest(name=name, after_seq=after_seq), timeout=timeout)
        received = False
        try:
            for event in stream:
                received = True
                yield event
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                return
            error = ApiError.from_rpc(err, self.address)
            if not (received and error.unreachable):
                raise error from None
        finally:
            stream.cancel()

    # Servers ----------------------------------------------------------------------------------------
    def list_servers(self) -> list:
        return self._call(all_pages, self.connection.servers.ListServers,
                          lambda token: server_service_pb2.ListServersRequest(page_size=500, page_token=token),
                          "servers")


class _UnreadableAddress:
    """Stands in for the connection when SERVERSINC_API (or the CA to verify it with) cannot be read:
    every call raises the ApiError that says why, so pages show it in their banner instead of a traceback."""

    def __init__(self, address: str, problem: AddressError):
        self.address = address
        # A CA that cannot be read says which file and what to do; an address says which setting.
        text = str(problem) if isinstance(problem, TrustError) else f"${API_ENV} {address!r}: {problem}"
        self._error = ApiError(None, text, address)

    def __getattr__(self, name):
        raise self._error

    def close(self) -> None:
        pass


@st.cache_resource(show_spinner=False)
def _client_for(address: str, token: str | None) -> Client:
    # Keyed by address and token: changing either (env, token file) gets a fresh channel,
    # while every rerun and every session with the same settings shares one.
    try:
        # The CA is read now, so a missing one is the pages' banner, not a traceback in a call.
        return Client(Connection(address, token, unary_timeout=UNARY_TIMEOUT_SECONDS, root_ca=load_root_ca()))
    except AddressError as problem:
        return Client(_UnreadableAddress(address, problem))


def get_client() -> Client:
    """The shared client for the configured control plane (same settings as the CLI)."""
    return _client_for(resolve_address(None), load_token())


def clear_cache() -> None:
    """Forget cached clients (tests point the dashboard at a new control plane each time)."""
    _client_for.clear()


def banner(err: ApiError) -> None:
    """The one way a failed call is shown: a red banner with the message, never a traceback."""
    st.error(err.message, icon=":material/cloud_off:" if err.unreachable else ":material/error:")
