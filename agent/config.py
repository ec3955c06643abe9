"""Agent configuration: where it keeps state, where it listens, and how it trusts callers.

One frozen dataclass so every module gets its paths from the same place instead of
re-deriving them from the environment.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from agent import build_slots
from agent.log_archive import ArchiveLimits
from agent.prune_settings import PruneSettings
from common.defaults import AGENT_PORT

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = AGENT_PORT
DEFAULT_FRONT_DOOR_PORT = 8000
DEFAULT_HTTPS_PORT = 8443  # beside the default front door; :443 on a production server
ROUTERS = ("haproxy", "direct")
REPO_ROOT = Path(__file__).resolve().parent.parent


def default_home() -> Path:
    """TUGBOAT_HOME, else `<repo>/.serversinc/agent` (kept inside the checkout for development)."""
    env = os.environ.get("TUGBOAT_HOME")
    return Path(env) if env else REPO_ROOT / ".serversinc" / "agent"


def default_router() -> str:
    """HAProxy when it is installed, else the direct (no proxy) router."""
    from agent.haproxy_process import haproxy_binary

    return "haproxy" if haproxy_binary() else "direct"


def parse_front_door(value: str) -> tuple[str, int]:
    """`HOST:PORT` or `PORT` -> (host, port); host defaults to 127.0.0.1."""
    value = (value or "").strip()
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = DEFAULT_HOST, value
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"invalid front door {value!r}: use HOST:PORT or PORT") from None
    if not 0 < number < 65536:
        raise ValueError(f"invalid front door port {number}: must be 1-65535")
    return host or DEFAULT_HOST, number


def https_front_door(value: str | None, explicit_front_door: bool, front_host: str) -> tuple[str, int]:
    """The HTTPS bind (host, port; port 0: none) from `value` ("HOST:PORT", "PORT" or "off"), or
    the default: 8443 beside the default front door, off beside one given explicitly (tests and
    benchmarks run many side by side and ask for HTTPS on a port of their own). The agent and the
    front door service both decide it here, so an agent adopts the service run.sh started."""
    value = value or ("off" if explicit_front_door else f"{front_host}:{DEFAULT_HTTPS_PORT}")
    return (DEFAULT_HOST, 0) if value == "off" else parse_front_door(value)


def parse_listen(value: str) -> tuple[str, int]:
    """`HOST:PORT` (IPv6 as `[::1]:PORT`) -> (host, port) for --listen."""
    value = (value or "").strip()
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise ValueError(f"invalid listen address {value!r}: use HOST:PORT")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"invalid listen address {value!r}: use HOST:PORT") from None
    if not 0 <= number < 65536:
        raise ValueError(f"invalid listen port {number}: must be 0-65535")
    return host, number


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def read_token_file(path: str | Path) -> str:
    """The join token stored in a file (whitespace around it ignored)."""
    try:
        token = Path(path).read_text().strip()
    except OSError as exc:
        raise ValueError(f"cannot read the join token file {path}: {exc.strerror}") from None
    if not token:
        raise ValueError(f"the join token file {path} is empty")
    return token


@dataclass(frozen=True)
class AgentConfig:
    """Where the agent keeps its state (repository caches, routes), its listen address, and
    how apps are routed: `router` "haproxy" (front door on front_door_host:front_door_port,
    an app answers at http://<app>.localhost:<port>) or "direct" (the container's own port).

    Trust: mutual TLS with the certificates in `certs_dir` (default `<state_dir>/../certs`, the
    `.serversinc/certs` scripts/certs.py fills) unless `insecure`; every call must carry `secret`
    (empty: TUGBOAT_SECRET_KEY from `<state_dir>/.env`, generated there on first start); `allow`
    optionally limits caller addresses (IPs / CIDRs). With `join` (the control plane API
    address) and `join_token`, the agent registers itself on start.
    """

    state_dir: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    front_door_host: str = DEFAULT_HOST
    front_door_port: int = DEFAULT_FRONT_DOOR_PORT
    router: str = field(default_factory=default_router)
    certs_dir: Path | None = None
    insecure: bool = False
    secret: str = field(default="", repr=False)
    allow: tuple[str, ...] = ()
    join: str = ""
    join_token: str = field(default="", repr=False)
    # The HTTPS front door (port 0: none) and where its certificates come from.
    https_host: str = DEFAULT_HOST
    https_port: int = 0
    acme_directory: str = ""
    acme_ca_bundle: str = ""
    # Lasting logs (agent.log_archive): how much of each app's past output is kept.
    log_archive: ArchiveLimits = field(default_factory=ArchiveLimits.from_env)
    # Retention (agent.pruner): how often the agent prunes by itself, and the build cache's threshold.
    prune: PruneSettings = field(default_factory=PruneSettings.from_env)
    # Image builds at once on this server (agent.build_slots; TUGBOAT_BUILD_CONCURRENCY).
    build_concurrency: int = field(default_factory=build_slots.limit_from_env)

    def __post_init__(self) -> None:
        build_slots.check_limit(self.build_concurrency)
        if self.router not in ROUTERS:
            raise ValueError(f"invalid router {self.router!r}: use one of {', '.join(ROUTERS)}")
        certs = Path(self.certs_dir) if self.certs_dir else Path(self.state_dir).parent / "certs"
        object.__setattr__(self, "certs_dir", certs)
        allow = (self.allow,) if isinstance(self.allow, str) else tuple(self.allow)
        object.__setattr__(self, "allow", tuple(a.strip() for a in ",".join(allow).split(",")
                                                if a.strip()))
        from agent.trust import parse_allowlist

        try:
            parse_allowlist(self.allow)
        except RuntimeError as exc:
            raise ValueError(str(exc)) from None
        if self.join_token and not self.join:
            raise ValueError("a join token needs --join API_ADDRESS (the control plane to register with)")

    @classmethod
    def from_env(cls, home: str | Path | None = None, host: str | None = None,
                 port: int | None = None, front_door: str | None = None,
                 router: str | None = None, *, certs: str | Path | None = None,
                 insecure: bool | None = None, allow: str | None = None, join: str | None = None,
                 join_token: str | None = None, join_token_file: str | Path | None = None,
                 listen: str | None = None, https: str | None = None,
                 acme_directory: str | None = None,
                 acme_ca_bundle: str | None = None) -> "AgentConfig":
        """Build a config from explicit values, falling back to the environment
        (TUGBOAT_HOME, TUGBOAT_FRONT_DOOR, TUGBOAT_ROUTER, TUGBOAT_CERTS, TUGBOAT_INSECURE,
        TUGBOAT_SECRET_KEY, TUGBOAT_ALLOW, TUGBOAT_JOIN, TUGBOAT_JOIN_TOKEN,
        TUGBOAT_JOIN_TOKEN_FILE, TUGBOAT_HTTPS_FRONT_DOOR, TUGBOAT_ACME_DIRECTORY,
        TUGBOAT_ACME_CA_BUNDLE, TUGBOAT_BUILD_CONCURRENCY) and defaults. `listen` ("HOST:PORT") sets host and port.

        HTTPS ("HOST:PORT" or "off"): by default 127.0.0.1:8443 beside the default front door,
        and off beside a front door given explicitly (tests and benchmarks run many side by
        side: they ask for HTTPS on a port of their own)."""
        env = os.environ
        explicit_front = front_door or env.get("TUGBOAT_FRONT_DOOR")
        front_host, front_port = parse_front_door(explicit_front or str(DEFAULT_FRONT_DOOR_PORT))
        https_host, https_port = https_front_door(https or env.get("TUGBOAT_HTTPS_FRONT_DOOR"),
                                                  bool(explicit_front), front_host)
        if listen:
            host, port = parse_listen(listen)
        token = join_token or ""
        if not token and join_token_file:
            token = read_token_file(join_token_file)
        token = token or env.get("TUGBOAT_JOIN_TOKEN", "").strip()
        if not token and env.get("TUGBOAT_JOIN_TOKEN_FILE"):
            token = read_token_file(env["TUGBOAT_JOIN_TOKEN_FILE"])
        certs = certs or env.get("TUGBOAT_CERTS") or None
        return cls(state_dir=Path(home) if home else default_home(),
                   host=host or DEFAULT_HOST,
                   port=DEFAULT_PORT if port is None else port,
                   front_door_host=front_host, front_door_port=front_port,
                   router=router or env.get("TUGBOAT_ROUTER") or default_router(),
                   certs_dir=Path(certs) if certs else None,
                   insecure=_truthy(env.get("TUGBOAT_INSECURE")) if insecure is None else insecure,
                   secret=env.get("TUGBOAT_SECRET_KEY", "").strip(),
                   allow=(allow if allow is not None else env.get("TUGBOAT_ALLOW", "")),
                   join=(join or env.get("TUGBOAT_JOIN", "")).strip(),
                   join_token=token, https_host=https_host, https_port=https_port,
                   acme_directory=acme_directory or env.get("TUGBOAT_ACME_DIRECTORY", ""),
                   acme_ca_bundle=acme_ca_bundle or env.get("TUGBOAT_ACME_CA_BUNDLE", ""))

    @property
    def env_file(self) -> Path:
        """The agent's dotenv file, where a generated TUGBOAT_SECRET_KEY is saved."""
        return self.state_dir / ".env"

    @property
    def front_door(self) -> str:
        """`host:port` of the HAProxy front door, or "" with the direct router."""
        return f"{self.front_door_host}:{self.front_door_port}" if self.router == "haproxy" else ""

    @property
    def https_front_door(self) -> str:
        """`host:port` of the HTTPS front door, or "" when there is none."""
        return f"{self.https_host}:{self.https_port}" if self.https_port and self.front_door else ""

    @property
    def repos_dir(self) -> Path:
        return self.state_dir / "repos"

    @property
    def log_archive_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def releases_dir(self) -> Path:
        """Per-app records of the releases that took traffic (agent.release_history)."""
        return self.state_dir / "releases"

    @property
    def routes_file(self) -> Path:
        return self.state_dir / "routes.json"

    def ensure_dirs(self) -> None:
        self.repos_dir.mkdir(parents=True, exist_ok=True)

    def agent_id(self) -> str:
        """A stable id for this state directory, created on first use.

        Stored in the state dir (not derived from its path) so moving the directory keeps
        ownership of the containers.
        """
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path = self.state_dir / "agent_id"
        try:
            value = path.read_text().strip()
            if value:
                return value
        except FileNotFoundError:
            pass
        value = uuid.uuid4().hex[:16]
        tmp = path.with_suffix(".tmp")
        tmp.write_text(value + "\n")
        os.replace(tmp, path)
        return value
