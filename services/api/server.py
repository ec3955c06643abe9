"""The control-plane gRPC server: `run_server` is used by `main` and by the tests (port 0)."""

from __future__ import annotations

from concurrent import futures
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
    server_service_pb2,
    server_service_pb2_grpc,
)

from services.api.auth import TokenAuthInterceptor
from services.api.servicers import ApiTokenServicer, AppServicer, DeploymentServicer, GitServicer, ServerServicer
from services.platform import Platform

MAX_MESSAGE_BYTES = 4 * 1024 * 1024


def server_credentials():
    """The one place API transport security is chosen (TLS is added here)."""
    return None


@contextmanager
def run_server(platform: Platform, *, host: str = "127.0.0.1", port: int = 0, start_worker: bool = True) -> Iterator[tuple[grpc.Server, int]]:
    """Starts the platform (schema, worker) and its API; yields (server, bound port); stops both."""
    # Watch streams hold a thread each for their lifetime: size the pool for many watchers.
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=64, thread_name_prefix="api"),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
        interceptors=[TokenAuthInterceptor(platform.tokens)],
    )
    app_service_pb2_grpc.add_AppServiceServicer_to_server(AppServicer(platform), server)
    deployment_service_pb2_grpc.add_DeploymentServiceServicer_to_server(DeploymentServicer(platform), server)
    git_service_pb2_grpc.add_GitServiceServicer_to_server(GitServicer(platform), server)
    server_service_pb2_grpc.add_ServerServiceServicer_to_server(ServerServicer(platform), server)
    api_token_service_pb2_grpc.add_ApiTokenServiceServicer_to_server(ApiTokenServicer(platform), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [
        app_service_pb2.DESCRIPTOR.services_by_name["AppService"].full_name,
        deployment_service_pb2.DESCRIPTOR.services_by_name["DeploymentService"].full_name,
        git_service_pb2.DESCRIPTOR.services_by_name["GitService"].full_name,
        server_service_pb2.DESCRIPTOR.services_by_name["ServerService"].full_name,
        api_token_service_pb2.DESCRIPTOR.services_by_name["ApiTokenService"].full_name,
    ]
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    address = f"{host}:{port}"
    creds = server_credentials()
    bound = server.add_secure_port(address, creds) if creds else server.add_insecure_port(address)
    if bound == 0:
        raise RuntimeError(f"cannot listen on {address}")
    if start_worker:
        platform.start()
    else:
        platform.bootstrap()
    server.start()
    for name in names:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    try:
        yield server, bound
    finally:
        health_servicer.enter_graceful_shutdown()
        server.stop(grace=2).wait()
        platform.stop()
