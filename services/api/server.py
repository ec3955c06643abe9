"""The control-plane gRPC server: `run_server` is used by `main` and by the tests (port 0)."""

from __future__ import annotations

import gc
import logging
from contextlib import contextmanager
from typing import Iterator

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from serversinc.v1 import (
    api_token_service_pb2,
    api_token_service_pb2_grpc,
    app_service_pb2,
    app_service_pb2_grpc,
    deployment_service_pb2,
    deployment_service_pb2_grpc,
    git_service_pb2,
    git_service_pb2_grpc,
    registry_service_pb2,
    registry_service_pb2_grpc,
    server_service_pb2,
    server_service_pb2_grpc,
)

from common.aio_server import LoopServer, serve
from common.api_tls import PLAINTEXT_ENV, ensure_api_pair, listen_host
from services.api.auth import TokenAuthInterceptor
from services.api.registry_servicer import RegistryServicer
from services.api.servicers import ApiTokenServicer, AppServicer, DeploymentServicer, GitServicer, ServerServicer
from services.deployments.feed import Feeds
from services.platform import Platform

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 4 * 1024 * 1024
WORKERS = 32  # unary calls running at once; open streams hold none
# Young-generation collections between two full ones (CPython: 10); see the gc.freeze() in run_server().
FULL_COLLECTION_AFTER = 100


def server_credentials(settings, host: str) -> grpc.ServerCredentials | None:
    """The one place API transport security is chosen: TLS with certs_dir's api.pem (issued from the
    CA there when missing, common.api_tls), or None (plaintext) only when settings ask for it.

    Server-side TLS only: callers authenticate with API tokens, so no client certificate is asked
    for. Raises ApiTlsError (a message saying what to do) when there is no certificate to serve."""
    if settings.api_plaintext:
        log.warning("control plane API serving PLAINTEXT gRPC (%s): API tokens, join tokens and agent "
                    "secrets cross the network in clear; use it on loopback for tests only", PLAINTEXT_ENV)
        return None
    cert, key = ensure_api_pair(settings.certs_dir, [listen_host(host)])
    # The chain ends with the platform CA: an agent that joins knows the CA only by its
    # fingerprint, and reads it from the handshake before it sends anything (agent.enroll).
    ca = settings.certs_dir / "ca.pem"
    if ca.is_file():
        cert = cert.rstrip(b"\n") + b"\n" + ca.read_bytes()
    return grpc.ssl_server_credentials([(key, cert)])


@contextmanager
def run_server(platform: Platform, *, host: str = "127.0.0.1", port: int = 0, start_worker: bool = True) -> Iterator[tuple[LoopServer, int]]:
    """Starts the platform (schema, worker) and its API; yields (server, bound port); stops both.

    TLS unless the settings ask for plaintext (server_credentials), decided before anything starts.

    A grpc.aio server (common.aio_server): unary calls run in a pool of `WORKERS` threads, while
    watches are coroutines that hold none, so open watchers never starve other calls.
    """
    # Before anything starts: no certificate to serve fails here, with nothing to stop.
    creds = server_credentials(platform.settings, host)
    feeds = Feeds(platform.deployments.events)
    health_servicer = health.aio.HealthServicer()
    names = [
        app_service_pb2.DESCRIPTOR.services_by_name["AppService"].full_name,
        deployment_service_pb2.DESCRIPTOR.services_by_name["DeploymentService"].full_name,
        git_service_pb2.DESCRIPTOR.services_by_name["GitService"].full_name,
        server_service_pb2.DESCRIPTOR.services_by_name["ServerService"].full_name,
        api_token_service_pb2.DESCRIPTOR.services_by_name["ApiTokenService"].full_name,
        registry_service_pb2.DESCRIPTOR.services_by_name["RegistryService"].full_name,
    ]

    async def setup(server: grpc.aio.Server) -> int:
        app_service_pb2_grpc.add_AppServiceServicer_to_server(AppServicer(platform), server)
        deployment_service_pb2_grpc.add_DeploymentServiceServicer_to_server(DeploymentServicer(platform, feeds), server)
        git_service_pb2_grpc.add_GitServiceServicer_to_server(GitServicer(platform), server)
        server_service_pb2_grpc.add_ServerServiceServicer_to_server(ServerServicer(platform), server)
        api_token_service_pb2_grpc.add_ApiTokenServiceServicer_to_server(ApiTokenServicer(platform), server)
        registry_service_pb2_grpc.add_RegistryServiceServicer_to_server(RegistryServicer(platform.registries), server)
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
        address = f"{host}:{port}"
        return server.add_secure_port(address, creds) if creds else server.add_insecure_port(address)

    async def serving(on: bool) -> None:
        if not on:
            await health_servicer.enter_graceful_shutdown()
            return
        for name in [*names, ""]:
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)

    if start_worker:
        platform.start()
    else:
        platform.bootstrap()
    # Everything loaded so far (modules, the ORM's mappers, the protobuf descriptors) lives as long as
    # the process: moved out of the collector's sight, a full collection no longer walks it. Measured:
    # those collections paused every thread for 50-80 ms, the slowest CreateDeployment calls under load.
    gc.freeze()
    # What stays young is still collected as before; a full collection (which walks every object made
    # since the freeze) waits for 100 young-generation passes instead of 10. Measured at 20 concurrent
    # CreateDeployment callers: two or three 7-16 ms full collections per 3,000 calls, each stalling
    # every call in flight; with 100 none in such a run. Cyclic garbage of long-lived objects is still
    # reclaimed, only less often.
    young, middle, _full = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_AFTER)
    try:
        with serve(setup, workers=WORKERS, name="api", interceptors=[TokenAuthInterceptor(platform.tokens)],
                   options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)]) as server:
            server.call(serving(True))
            try:
                yield server, server.port
            finally:
                server.call(serving(False))
    finally:
        feeds.close()
        platform.stop()
