"""Agent configuration: where it keeps state and where it listens.

One frozen dataclass so every module gets its paths from the same place instead of
re-deriving them from the environment.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 50052
REPO_ROOT = Path(__file__).resolve().parent.parent


def default_home() -> Path:
    """TUGBOAT_HOME, else `<repo>/.serversinc/agent` (kept inside the checkout for development)."""
    env = os.environ.get("TUGBOAT_HOME")
    return Path(env) if env else REPO_ROOT / ".serversinc" / "agent"


@dataclass(frozen=True)
class AgentConfig:
    """Where the agent keeps its state (repository caches, routes) and its listen address."""

    state_dir: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT

    @classmethod
    def from_env(cls, home: str | Path | None = None, host: str | None = None,
                 port: int | None = None) -> "AgentConfig":
        """Build a config from explicit values, falling back to the environment and defaults."""
        return cls(state_dir=Path(home) if home else default_home(),
                   host=host or DEFAULT_HOST,
                   port=DEFAULT_PORT if port is None else port)

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
