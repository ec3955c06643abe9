"""The agent port: what the deploy pipeline needs from a server's agent, in plain Python types.

The pipeline depends on this, not on gRPC, so its logic reads as the deploy flow and nothing else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from common.rules import DRAIN_SECONDS, HEALTH
# Shared with the agent; the pipeline and the client import them from here.
from common.cancel import CancelToken
from common.phases import Phase
from common.specs import AgentInfo, BuildSpec


class AgentError(Exception):
    """The agent refused or failed a call; the message is for people."""


class AgentUnavailable(AgentError):
    """The agent could not be reached."""


class AgentTimeout(AgentError):
    """The call ran past its deadline."""


class AgentSlotWaitTimeout(AgentTimeout):
    """A build waited for one of the server's build slots past its bound (other builds held them)."""


class AgentCancelled(AgentError):
    """The call was cancelled by us."""


class AgentBusy(AgentError):
    """The agent still runs a Build or Deploy under the same deployment id: an interrupted
    attempt's, which ends once the agent sees its caller gone."""


@dataclass
class BuildUpdate:
    """One line of build output, and on the last update the result or the error."""

    line: str = ""
    step_current: int = 0
    step_total: int = 0
    image: str = ""
    image_id: str = ""
    skipped: bool = False
    commit_message: str = ""
    seconds: float = 0.0
    error: str = ""
    cancelled: bool = False
    done: bool = False


@dataclass(frozen=True)
class RegistryAuth:
    """A container registry and the credentials to push to it or pull from it. The password
    lives in memory only for the call (decrypted from the database by ImageTransfer), so it is
    kept out of repr: a logged spec or a traceback never shows it."""

    address: str
    username: str = ""
    password: str = field(default="", repr=False)


@dataclass
class ReleaseSpec:
    """What to run and how to judge and replace it; the settings are those in RUN_SETTINGS."""

    app: str
    deployment_id: int
    image: str
    commit_sha: str
    port: int
    health_path: str
    health_timeout_seconds: int
    stop_grace_seconds: int
    env: dict[str, str] = field(default_factory=dict)
    health_check_mode: str = "HTTP"
    health_status_min: int = HEALTH.status_min
    health_status_max: int = HEALTH.status_max
    health_interval_ms: int = HEALTH.interval_ms
    health_probe_timeout_ms: int = HEALTH.probe_timeout_ms
    healthy_threshold: int = HEALTH.healthy_threshold
    stop_signal: str = "SIGTERM"
    drain_seconds: int = DRAIN_SECONDS
    domains: list[str] = field(default_factory=list)
    # Secret env, sealed (SecretBox ciphertext) everywhere but in the call to the agent.
    secret_env: str = ""
    # HTTPS at the front door: redirect once a domain's certificate serves, HSTS max-age (0: off).
    https_redirect: bool = False
    hsts_max_age_seconds: int = 0
    # Limits (0: none), volumes as (name, path) pairs, and whether the old container stops first.
    memory_limit_bytes: int = 0
    cpu_limit_millis: int = 0
    volumes: list[tuple[str, str]] = field(default_factory=list)
    exclusive_volumes: bool = False
    # Not frozen in the release: a new build runs the app's release command, a rollback none.
    release_command: list[str] = field(default_factory=list)
    # This server's share of the app's replicas (services.deployments.rollout.plan): containers
    # of the release side by side behind the server's front door. Not frozen in the release.
    replicas: int = 1
    retain_releases: int = 5
    # A digest ref (ADDR/serversinc/APP@sha256:…) built on another server: the agent pulls it with
    # these credentials when the image is not on its engine yet. Not frozen in the release.
    pull_auth: RegistryAuth | None = None


# The app settings a release freezes: a rollback runs with exactly these again.
RUN_SETTINGS = (
    "port", "health_path", "health_timeout_seconds", "stop_grace_seconds", "env", "health_check_mode",
    "health_status_min", "health_status_max", "health_interval_ms", "health_probe_timeout_ms",
    "healthy_threshold", "stop_signal", "drain_seconds", "domains", "secret_env",
    "https_redirect", "hsts_max_age_seconds", "memory_limit_bytes", "cpu_limit_millis", "volumes",
    "exclusive_volumes",
)


@dataclass(frozen=True)
class AppRemoval:
    """What RemoveApp did: containers removed, and the app's Docker volumes removed or kept."""

    containers: int = 0
    removed_volumes: tuple[str, ...] = ()
    kept_volumes: tuple[str, ...] = ()


@dataclass
class DeployUpdate:
    """One step of a Deploy stream, in the phase the agent reports (START … DONE); a failure
    comes in the phase that failed."""

    phase: Phase
    message: str = ""
    container_id: str = ""
    url: str = ""
    failure: str = ""  # BUILD, START, HEALTH, SWITCH, CANCELLED
    error: str = ""
    # On DONE of an exclusive-volumes deploy: how long the app served nothing.
    unserved_seconds: float = 0.0


@dataclass
class ContainerView:
    id: str
    name: str
    app: str
    deployment_id: int
    commit_sha: str
    image: str
    state: str
    direct_url: str
    created: datetime | None
    serving: bool
    url: str = ""
    # As the router's checks see it: HEALTHY, UNHEALTHY, UNKNOWN, or "" from an agent that
    # does not report it.
    health: str = ""
    health_detail: str = ""
    # How many times Docker restarted it under its restart policy.
    restart_count: int = 0
    # An old release still holding open connections after a switch, and how many.
    draining: bool = False
    open_connections: int = 0
    # How many times the kernel killed a process of it for memory, and when last (agent.oom_watch).
    oom_kills: int = 0
    last_oom: datetime | None = None
    # The server it runs on: set by the control plane, which asks each of an app's servers.
    server: str = ""


@dataclass
class LogEntry:
    time: datetime | None
    text: str
    container_id: str
    # The server the line came from: set by the control plane, which reads each of an app's servers.
    server: str = ""


@dataclass
class RunSpec:
    """A one-off command for the agent (RunCommand): the env here is the opened one (secret env
    merged in), so a RunSpec lives only for the call."""

    app: str
    run_id: str
    image: str
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    memory_limit_bytes: int = 0
    cpu_limit_millis: int = 0
    volumes: list[tuple[str, str]] = field(default_factory=list)
    timeout_seconds: int = 0
    detach: bool = False


@dataclass
class RunUpdate:
    """One event of a RunCommand stream: started (container_id), a line, or the exit."""

    container_id: str = ""
    line: str | None = None
    exited: bool = False
    exit_code: int = 0
    reason: str = ""


@dataclass
class RunReport:
    """A run as its agent knows it (GetRun)."""

    running: bool
    exit_code: int = 0
    reason: str = ""
    lines: list[str] = field(default_factory=list)
    truncated: bool = False
    ended: datetime | None = None


class UnknownRunOnAgent(AgentError):
    """The agent has neither the run's container nor its kept output."""


class Agent(Protocol):
    def build(self, spec: BuildSpec, *, timeout: float, cancel: CancelToken,
              slot_wait: float) -> Iterator[BuildUpdate]:
        """The build's stream. `timeout` counts the build's own seconds: not those it waits for a
        build slot behind the server's other builds, which `slot_wait` bounds on its own."""
        ...

    def deploy(self, spec: ReleaseSpec, *, timeout: float, cancel: CancelToken) -> Iterator[DeployUpdate]: ...

    def list_containers(self, app: str, *, timeout: float = 10.0) -> list[ContainerView]: ...

    def stream_logs(self, app: str, *, follow: bool, tail: int, deployment_id: int = 0,
                    since: datetime | None = None) -> AsyncIterator[LogEntry]: ...

    def remove_app(self, app: str, *, delete_volumes: bool = False) -> "AppRemoval": ...

    def info(self, *, timeout: float = 3.0) -> AgentInfo: ...

    def push_image(self, image: str, repository: str, auth: RegistryAuth, *, timeout: float) -> str:
        """Tags `image` (built on this server) as REPOSITORY:TAG, pushes it with `auth`, and returns
        the digest ref REPOSITORY@sha256:… that other servers pull."""
        ...
