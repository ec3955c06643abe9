"""AppSpec: the settable fields of an app, with defaults and validation, free of storage and transport."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from services.config import LOCAL_SERVER
from services.core import validation as v

DEFAULT_PORT = 8080
DEFAULT_HEALTH_PATH = "/"
DEFAULT_DOCKERFILE = "Dockerfile"


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

    def with_defaults(self) -> "AppSpec":
        """Zero values mean "the default", as in proto3."""
        return AppSpec(
            name=self.name,
            repo_url=self.repo_url.strip(),
            branch=self.branch or "main",
            port=self.port or DEFAULT_PORT,
            health_path=self.health_path or DEFAULT_HEALTH_PATH,
            dockerfile=self.dockerfile or DEFAULT_DOCKERFILE,
            context_dir=self.context_dir or ".",
            env=dict(self.env),
            server=self.server or LOCAL_SERVER,
            health_timeout_seconds=self.health_timeout_seconds,
            build_timeout_seconds=self.build_timeout_seconds,
            stop_grace_seconds=self.stop_grace_seconds,
            health_check_mode=self.health_check_mode or "HTTP",
            health_status_min=self.health_status_min or 200,
            health_status_max=self.health_status_max or 399,
            health_interval_ms=self.health_interval_ms or 100,
            health_probe_timeout_ms=self.health_probe_timeout_ms or 1000,
            healthy_threshold=self.healthy_threshold or 1,
            stop_signal=(self.stop_signal or "SIGTERM").upper(),
            drain_seconds=self.drain_seconds or 5,
            domains=sorted({d.strip().lower() for d in self.domains if d.strip()}),
            secret_env=dict(self.secret_env),
            notify_urls=list(dict.fromkeys(u.strip() for u in self.notify_urls if u.strip())),
        )

    def validate(self) -> "AppSpec":
        v.app_name(self.name)
        v.repo_url(self.repo_url)
        v.branch(self.branch)
        v.port(self.port)
        v.health_path(self.health_path)
        v.relative_path(self.dockerfile, "dockerfile")
        if not self.dockerfile or self.dockerfile == ".":
            raise v.InvalidArgument("dockerfile must name a file")
        v.relative_path(self.context_dir, "context directory")
        v.env(self.env)
        v.env(self.secret_env)
        both = set(self.env) & set(self.secret_env)
        if both:
            raise v.InvalidArgument(f"{', '.join(sorted(both))} set in both env and secret env: keep one")
        v.seconds(self.health_timeout_seconds, "health timeout", maximum=3600)
        v.seconds(self.build_timeout_seconds, "build timeout", maximum=6 * 3600)
        v.seconds(self.stop_grace_seconds, "stop grace period", maximum=3600)
        if self.health_check_mode not in ("HTTP", "DOCKER"):
            raise v.InvalidArgument(f"health check mode {self.health_check_mode!r} is not HTTP or DOCKER")
        v.status_range(self.health_status_min, self.health_status_max)
        v.bounded(self.health_interval_ms, "health interval (ms)", 10, 60_000)
        v.bounded(self.health_probe_timeout_ms, "health probe timeout (ms)", 10, 60_000)
        v.bounded(self.healthy_threshold, "healthy threshold", 1, 100)
        v.stop_signal(self.stop_signal)
        v.seconds(self.drain_seconds, "drain period", maximum=3600)
        for domain in self.domains:
            v.domain(domain)
        if len(self.notify_urls) > 10:
            raise v.InvalidArgument("at most 10 notification URLs per app")
        for url in self.notify_urls:
            v.notify_url(url)
        return self


SETTABLE = tuple(f.name for f in fields(AppSpec) if f.name != "name")
