"""The front door's run directory: its file layout, its settings, and the one way to render it.

The front door service (`agent.frontdoor`) and every agent that adopts it share this directory
(`<state_dir>/haproxy`, or a short path under /tmp when a socket path would not fit). Both
render the HAProxy config the same way, from the persisted routes, under one file lock that
also numbers the render: a generation only ever grows, so `show info`'s `node
tugboat-<generation>` confirms which render a running HAProxy serves, whoever wrote it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

from agent.haproxy_config import MAINTENANCE_MAP, TlsFrontend, render_config
from agent.router import RouteStore, RouterError
from agent.tls_files import TlsFiles
from common.files import write_atomic

MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux
NODE_PREFIX = "tugboat-"


def run_dir_for(state_dir: Path) -> Path:
    """`<state_dir>/haproxy`, unless its socket paths would not fit in a sockaddr_un."""
    run_dir = Path(state_dir) / "haproxy"
    if len(str(run_dir / "master.sock")) <= MAX_SOCKET_PATH:
        return run_dir
    digest = hashlib.sha1(str(Path(state_dir).resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"tugboat-haproxy-{digest}"


def node_generation(node: str) -> int:
    """The generation in a `node tugboat-<n>` name; -1 for anything else."""
    if not node.startswith(NODE_PREFIX):
        return -1
    try:
        return int(node[len(NODE_PREFIX):])
    except ValueError:
        return -1


@dataclass(frozen=True)
class Settings:
    """What the front door listens on and renders with; written by the service that runs it so an
    adopting agent renders exactly what the service would."""

    front_host: str
    front_port: int
    server_maxconn: int = 0
    # The HTTPS bind; port 0: the front door speaks plain HTTP only.
    https_host: str = ""
    https_port: int = 0

    @property
    def front_door(self) -> str:
        return f"{self.front_host}:{self.front_port}"

    @property
    def https_front_door(self) -> str:
        return f"{self.https_host}:{self.https_port}" if self.https_port else ""


@dataclass(frozen=True)
class FrontDoorFiles:
    """The paths of the front door of the agent state in `state_dir`, whose persisted routes are
    `routes_file`."""

    state_dir: Path
    routes_file: Path

    @classmethod
    def for_state(cls, state_dir: Path, routes_file: Path | None = None) -> "FrontDoorFiles":
        state_dir = Path(state_dir)
        return cls(state_dir, Path(routes_file or state_dir / "routes.json"))

    @property
    def run_dir(self) -> Path:
        return run_dir_for(self.state_dir)

    config = property(lambda self: self.run_dir / "haproxy.cfg")
    host_map = property(lambda self: self.run_dir / "hosts.map")
    maintenance_map = property(lambda self: self.run_dir / MAINTENANCE_MAP)
    admin_socket = property(lambda self: self.run_dir / "admin.sock")
    master_socket = property(lambda self: self.run_dir / "master.sock")
    haproxy_pid = property(lambda self: self.run_dir / "haproxy.pid")
    haproxy_log = property(lambda self: self.run_dir / "haproxy.log")
    service_pid = property(lambda self: self.run_dir / "frontdoor.pid")
    service_log = property(lambda self: self.run_dir / "frontdoor.log")
    service_lock = property(lambda self: self.run_dir / "frontdoor.lock")
    agent_lock = property(lambda self: self.run_dir / "agent.lock")
    render_lock_file = property(lambda self: self.run_dir / "render.lock")
    generation_file = property(lambda self: self.run_dir / "generation")
    settings_file = property(lambda self: self.run_dir / "settings.json")

    def save_settings(self, settings: Settings) -> None:
        write_atomic(self.settings_file, json.dumps(asdict(settings)) + "\n")

    def load_settings(self) -> Settings | None:
        try:
            return Settings(**json.loads(self.settings_file.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    @contextmanager
    def render_lock(self) -> Iterator[None]:
        """Held across render + (re)start or reload, by the service and by agents alike."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.render_lock_file, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def render(self, settings: Settings, binary: str) -> int:
        """Render config and map from the routes with the next generation and check them with
        `haproxy -c`; returns the generation. Call with `render_lock()` held."""
        try:
            generation = int(self.generation_file.read_text().strip() or 0) + 1
        except (OSError, ValueError):
            generation = 1
        write_atomic(self.generation_file, f"{generation}\n")
        tls = None
        if settings.https_port:
            tls_files = TlsFiles(self.state_dir)
            tls_files.ensure()
            tls = TlsFrontend(settings.https_host, settings.https_port, tls_files)
        rendered = render_config(front_host=settings.front_host, front_port=settings.front_port,
                                 run_dir=self.run_dir, generation=generation,
                                 routes=RouteStore(self.routes_file).load(),
                                 server_maxconn=settings.server_maxconn, tls=tls)
        write_atomic(self.host_map, rendered.host_map)
        write_atomic(self.maintenance_map, rendered.maintenance_map)
        write_atomic(self.config, rendered.config)
        check = subprocess.run([binary, "-c", "-q", "-f", str(self.config)],
                               capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise RouterError(f"haproxy rejected the rendered config {self.config}: "
                              f"{(check.stderr or check.stdout).strip()[-2000:]}")
        return generation


def try_lock(path: Path):
    """An open file holding an exclusive flock on `path`, or None when another process holds it.
    The lock lasts until the file is closed (or its process dies, however it dies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        return None
    return fh


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
