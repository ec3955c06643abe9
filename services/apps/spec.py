"""AppSpec: the settable fields of an app, with defaults and validation, free of storage and transport.

`with_defaults().validate()` is the one path from what a caller sent to what is stored: zero values
become the defaults, then every field is checked by `common.rules` (the rules the agent applies
again at deploy) and stop signal and domains are replaced by their canonical form, so the agent is
later handed exactly what it accepts. Nothing is cleaned silently: `a.com\n` is refused, not trimmed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from common import rules, runtime_rules
from common.rules import HEALTH
from services.apps import placement
from services.config import LOCAL_SERVER
from services.core import validation as v
from services.core.errors import InvalidArgument

DEFAULT_PORT = 8080
DEFAULT_DOCKERFILE = "Dockerfile"
MAX_NOTIFY_URLS = 10


@dataclass
class AppSpec:
    name: str
    repo_url: str
    branch: str = "main"
    port: int = 0
    health_path: str = ""
    dockerfile: str = ""
    context_dir: str = ""
    env: dict[str, str] = field(default_factory=dict)
    server: str = ""
    health_timeout_seconds: int = 0
    build_timeout_seconds: int = 0
    stop_grace_seconds: int = 0
    # "HTTP" or "DOCKER" (the image's own HEALTHCHECK).
    health_check_mode: str = ""
    health_status_min: int = 0
    health_status_max: int = 0
    health_interval_ms: int = 0
    health_probe_timeout_ms: int = 0
    healthy_threshold: int = 0
    stop_signal: str = ""
    drain_seconds: int = 0
    domains: list[str] = field(default_factory=list)
    # Plain values here; stored encrypted. A MASK value on update means "keep the stored one".
    secret_env: dict[str, str] = field(default_factory=dict)
    notify_urls: list[str] = field(default_factory=list)
    # HTTPS at the front door (the certificates themselves are the agent's).
    https_redirect: bool = False
    hsts_max_age_seconds: int = 0
    # How the containers run (common.runtime_rules): limits (0: none), volumes as (name, path),
    # the release command's argv, and how many successful releases keep their image.
    memory_limit_bytes: int = 0
    cpu_limit_millis: int = 0
    volumes: list[tuple[str, str]] = field(default_factory=list)
    exclusive_volumes: bool = False
    release_command: list[str] = field(default_factory=list)
    retain_releases: int = 0
    # The servers it runs on in rollout order (services.apps.placement); `server` is servers[0],
    # the one that builds. Empty means [server]. replicas 0 means one per server.
    servers: list[str] = field(default_factory=list)
    replicas: int = 0

    def with_defaults(self) -> "AppSpec":
        """Zero values mean "the default", as in proto3."""
        servers = list(self.servers) or [self.server or LOCAL_SERVER]
        return AppSpec(
            name=self.name,
            repo_url=self.repo_url.strip(),
            branch=self.branch or "main",
            port=self.port or DEFAULT_PORT,
            health_path=self.health_path or HEALTH.path,
            dockerfile=self.dockerfile or DEFAULT_DOCKERFILE,
            context_dir=self.context_dir or ".",
            env=dict(self.env),
            server=self.server or servers[0],
            servers=servers,
            replicas=self.replicas or len(servers),
            health_timeout_seconds=self.health_timeout_seconds,
            build_timeout_seconds=self.build_timeout_seconds,
            stop_grace_seconds=self.stop_grace_seconds,
            health_check_mode=self.health_check_mode or "HTTP",
            health_status_min=self.health_status_min or HEALTH.status_min,
            health_status_max=self.health_status_max or HEALTH.status_max,
            health_interval_ms=self.health_interval_ms or HEALTH.interval_ms,
            health_probe_timeout_ms=self.health_probe_timeout_ms or HEALTH.probe_timeout_ms,
            healthy_threshold=self.healthy_threshold or HEALTH.healthy_threshold,
            stop_signal=self.stop_signal,
            drain_seconds=self.drain_seconds or rules.DRAIN_SECONDS,
            domains=list(self.domains),
            secret_env=dict(self.secret_env),
            notify_urls=list(dict.fromkeys(u.strip() for u in self.notify_urls if u.strip())),
            https_redirect=self.https_redirect,
            hsts_max_age_seconds=self.hsts_max_age_seconds,
            memory_limit_bytes=self.memory_limit_bytes,
            cpu_limit_millis=self.cpu_limit_millis,
            volumes=[(n, p) for n, p in self.volumes],
            exclusive_volumes=self.exclusive_volumes,
            release_command=list(self.release_command),
            retain_releases=self.retain_releases or runtime_rules.DEFAULT_RETAIN_RELEASES,
        )

    def validate(self) -> "AppSpec":
        """This spec in canonical form (stop signal, domains), or InvalidArgument saying what is allowed."""
        v.app_name(self.name)
        v.repo_url(self.repo_url)
        v.branch(self.branch)
        v.port(self.port)
        v.health_path(self.health_path)
        v.relative_path(self.dockerfile, "dockerfile")
        if not self.dockerfile or self.dockerfile == ".":
            raise InvalidArgument("dockerfile must name a file")
        v.relative_path(self.context_dir, "context directory")
        v.env(self.env)
        v.env(self.secret_env)
        both = set(self.env) & set(self.secret_env)
        if both:
            raise InvalidArgument(f"{', '.join(sorted(both))} set in both env and secret env: keep one")
        v.seconds(self.health_timeout_seconds, "health timeout")
        v.seconds(self.build_timeout_seconds, "build timeout", maximum=rules.MAX_BUILD_SECONDS)
        v.seconds(self.stop_grace_seconds, "stop grace period")
        if self.health_check_mode not in ("HTTP", "DOCKER"):
            raise InvalidArgument(f"health check mode {self.health_check_mode!r} is not HTTP or DOCKER")
        v.health(status_min=self.health_status_min, status_max=self.health_status_max,
                 interval_ms=self.health_interval_ms, probe_timeout_ms=self.health_probe_timeout_ms,
                 healthy_threshold=self.healthy_threshold)
        signal = v.stop_signal(self.stop_signal)
        v.drain_seconds(self.drain_seconds)
        domains = sorted(v.domains(self.domains))
        if len(self.notify_urls) > MAX_NOTIFY_URLS:
            raise InvalidArgument(f"at most {MAX_NOTIFY_URLS} notification URLs per app")
        for url in self.notify_urls:
            v.notify_url(url)
        v.hsts_seconds(self.hsts_max_age_seconds)
        servers, replicas = placement.validate(self.servers, self.replicas)
        if self.server != servers[0]:
            raise InvalidArgument(f"server {self.server!r} is not the first of servers ({', '.join(servers)}): "
                                  "the first server is the app's server; set one of them, or both alike",
                                  field="app.server")
        with v.checked():
            runtime_rules.memory_bytes(self.memory_limit_bytes)
            runtime_rules.cpu_millis(self.cpu_limit_millis)
            volumes = runtime_rules.volumes(self.volumes)
            runtime_rules.release_command(self.release_command)
            runtime_rules.retain_releases(self.retain_releases)
        return replace(self, stop_signal=signal, domains=domains, volumes=volumes, servers=list(servers),
                       replicas=replicas)


SETTABLE = tuple(f.name for f in fields(AppSpec) if f.name != "name")
