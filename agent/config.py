"""Agent configuration: where it keeps state and where it listens.

One frozen dataclass so every module gets its paths from the same place instead of
re-deriving them from the environment.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 50052
DEFAULT_FRONT_DOOR_PORT = 8000
ROUTERS = ("haproxy", "direct")
REPO_ROOT = Path(__file__).resolve().parent.parent


def default_home() -> Path:
    """TUGBOAT_HOME, else `<repo>/.serversinc/agent` (kept inside the checkout for development)."""
    env = os.environ.get("TUGBOAT_HOME")
    return Path(env) if env else REPO_ROOT / ".serversinc" / "agent"


def default_router() -> str:
    """HAProxy when it is installed, else the direct (no proxy) router."""
    from agent.haproxy import haproxy_binary

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


@dataclass(frozen=True)
class AgentConfig:
    """Where the agent keeps its state (repository caches, routes), its listen address, and
    how apps are routed: `router` "haproxy" (front door on front_door_host:front_door_port,
    an app answers at http://<app>.localhost:<port>) or "direct" (the container's own port)."""

    state_dir: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    front_door_host: str = DEFAULT_HOST
    front_door_port: int = DEFAULT_FRONT_DOOR_PORT
    router: str = field(default_factory=default_router)

    def __post_init__(self) -> None:
        if self.router not in ROUTERS:
            raise ValueError(f"invalid router {self.router!r}: use one of {', '.join(ROUTERS)}")

    @classmethod
    def from_env(cls, home: str | Path | None = None, host: str | None = None,
                 port: int | None = None, front_door: str | None = None,
                 router: str | None = None) -> "AgentConfig":
        """Build a config from explicit values, falling back to the environment
        (TUGBOAT_HOME, TUGBOAT_FRONT_DOOR, TUGBOAT_ROUTER) and defaults."""
        front_host, front_port = parse_front_door(
            front_door or os.environ.get("TUGBOAT_FRONT_DOOR") or str(DEFAULT_FRONT_DOOR_PORT))
        return cls(state_dir=Path(home) if home else default_home(),
                   host=host or DEFAULT_HOST,
                   port=DEFAULT_PORT if port is None else port,
                   front_door_host=front_host, front_door_port=front_port,
                   router=router or os.environ.get("TUGBOAT_ROUTER") or default_router())

    @property
    def front_door(self) -> str:
        """`host:port` of the HAProxy front door, or "" with the direct router."""
        return f"{self.front_door_host}:{self.front_door_port}" if self.router == "haproxy" else ""

    @property
    def repos_dir(self) -> Path:
        return self.state_dir / "repos"

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
