"""gRPC server assembly: wires config, engine, router and servicer, and serves them."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import grpc

from agent import enroll
from agent.apps import AppAdmin
from agent.build_slots import BuildSlots
from agent.builder import Builder
from agent.config import AgentConfig
from agent.docker_engine import DockerEngine
from agent.log_archive import LogArchive
from agent.log_follow import LogReader
from agent.oom_watch import OomWatch
from agent.operations import Operations
from agent.one_off import OneOffs
from agent.image_engine import ImageEngine
from agent.pruner import Pruner
from agent.registry_images import RegistryImages
from agent.release_history import ReleaseHistory
from agent.releaser import Releaser
from agent.repo_cache import RepoCache
from agent.router import DirectRouter, Router
from agent.servicer import TugboatServicer, add_to_server
from agent.serving_cert import ServingCertificate
from agent.trust import AuthInterceptor, parse_allowlist, resolve_secret
from common.aio_server import LoopServer, serve

log = logging.getLogger(__name__)
MAX_WORKERS = 32


def server_credentials(config: AgentConfig, serving: ServingCertificate | None = None
                       ) -> grpc.ServerCredentials | None:
    """Transport security for the listening port: mutual TLS from config.certs_dir (through
    `serving`, which renews it in place), or None (plaintext) only when config.insecure. Raises
    TrustError when certificates are missing."""
    if config.insecure:
        log.warning("INSECURE: tugboat is serving PLAINTEXT gRPC without client certificates "
                    "(--insecure / TUGBOAT_INSECURE); anyone who can reach the port and learns "
                    "the secret can deploy. Use it only for local tests.")
        return None
    return (serving or ServingCertificate(config.certs_dir)).credentials()


def make_router(config: AgentConfig) -> Router:
    """The router the config asks for (not started yet)."""
    if config.router == "haproxy":
        from agent.haproxy import HAProxyRouter

        return HAProxyRouter(config.state_dir, front_host=config.front_door_host,
                             front_port=config.front_door_port, routes_file=config.routes_file,
                             https_host=config.https_host,
                             https_port=config.https_port if config.https_front_door else 0)
    return DirectRouter(config.routes_file)


def make_certificates(config: AgentConfig, router: Router):
    """The certificate manager of an HTTPS front door (None without one; not started yet)."""
    https_port = getattr(getattr(router, "process", None), "settings", None)
    https_port = getattr(https_port, "https_port", 0)
    if not https_port:
        return None
    from agent.acme_issuer import AcmeSettings
    from agent.certificates import CertificateManager

    return CertificateManager(router.files, https_port, AcmeSettings.from_values(
        config.acme_directory or None, config.acme_ca_bundle or None))


def build_servicer(config: AgentConfig, *, docker_client=None,
                   router: Router | None = None) -> tuple[TugboatServicer, Releaser]:
    config.ensure_dirs()
    agent_id = config.agent_id()
    engine = DockerEngine(docker_client, agent_id=agent_id)
    router = router or make_router(config)
    cache = RepoCache(config.repos_dir)
    archive = LogArchive(config.log_archive_dir, engine, config.log_archive)
    releaser = Releaser(engine, router, agent_id=agent_id, archive=archive)
    releaser.one_offs = OneOffs(engine, config.state_dir / "runs", agent_id)  # keeps detached runs' output
    servicer = TugboatServicer(Builder(engine, cache), releaser,
                               AppAdmin(engine, router, cache, archive=archive),
                               Operations(), LogReader.for_client(engine.client),
                               certificates=make_certificates(config, router), archive=archive,
                               build_slots=BuildSlots(config.build_concurrency))
    servicer.oom = OomWatch(engine)  # started by run_server
    servicer.pruner = Pruner(ImageEngine(engine.client, agent_id), ReleaseHistory(config.releases_dir),
                             releaser, cache, interval=config.prune.interval_seconds,
                             disk_threshold=config.prune.disk_threshold_bytes,
                             after_deploys=config.prune.after_deploy)
    releaser.retention = servicer.pruner  # started by run_server
    # Pushes what this server built, pulls by digest what another built (agent.registry_images).
    servicer.registry_images = releaser.registry_images = RegistryImages(engine.client)
    return servicer, releaser


@contextmanager
def run_server(config: AgentConfig, *, port: int | None = None, host: str = "127.0.0.1",
               docker_client=None, router: Router | None = None
               ) -> Iterator[tuple[LoopServer, int]]:
    """Reconcile state, serve until the block exits, then stop; yields (server, bound_port).

    `port=None` uses config.port; pass 0 for a free port (tests). The router is started
    (HAProxy: its supervised process, routes restored) before reconcile and closed last.
    Trust comes from the config (see AgentConfig): mutual TLS unless config.insecure, the secret
    (config.secret, else the .env one, generated when missing), the allowlist, and enrollment
    with config.join / config.join_token once serving. TrustError (missing certificates, short
    secret) is raised before anything starts.
    """
    serving = None if config.insecure else ServingCertificate(config.certs_dir)
    credentials = server_credentials(config, serving)
    secret = resolve_secret(config.secret, config.env_file)
    auth = AuthInterceptor(secret, parse_allowlist(config.allow))
    servicer, releaser = build_servicer(config, docker_client=docker_client, router=router)
    servicer.serving_cert = serving
    router = releaser.router
    getattr(router, "start", lambda: None)()
    certificates = servicer.certificates
    servicer.oom.start()
    servicer.pruner.start()
    try:
        if certificates is not None:
            certificates.start()  # after the router: it speaks to the front door it adopted
        with _serve(config, servicer, releaser, port, host, credentials, auth) as served:
            if config.join and config.join_token:
                enroll.register(config.join, config.join_token, secret,
                                enroll.advertised_address(host, served[1]),
                                ca_file=Path(config.certs_dir) / "ca.pem")
            yield served
    finally:
        servicer.oom.close()
        servicer.pruner.close()
        if certificates is not None:
            certificates.close()
        getattr(router, "close", lambda: None)()


@contextmanager
def _serve(config: AgentConfig, servicer: TugboatServicer, releaser: Releaser,
           port: int | None, host: str, credentials: grpc.ServerCredentials | None,
           auth: AuthInterceptor) -> Iterator[tuple[LoopServer, int]]:
    """A grpc.aio server (common.aio_server): `MAX_WORKERS` threads for unary calls and running
    Build/Deploy streams; log followers are coroutines and hold none."""
    releaser.reconcile()
    releaser.one_offs.resume()  # detached runs that outlived the last agent process
    address = f"{host}:{config.port if port is None else port}"
    if ":" in host and not host.startswith("["):
        address = f"[{host}]:{config.port if port is None else port}"
    health = None

    async def setup(server: grpc.aio.Server) -> int:
        nonlocal health
        health = add_to_server(servicer, server)
        if credentials is None:
            return server.add_insecure_port(address)
        return server.add_secure_port(address, credentials)

    with serve(setup, workers=MAX_WORKERS, name="tugboat", interceptors=[auth], grace=1) as server:
        server.call(health.set_serving(True))
        log.info("tugboat listening on %s:%d (%s; state %s)", host, server.port,
                 "PLAINTEXT" if credentials is None else f"mutual TLS, certificates in {config.certs_dir}",
                 config.state_dir)
        try:
            yield server, server.port
        finally:
            server.call(health.set_serving(False))
