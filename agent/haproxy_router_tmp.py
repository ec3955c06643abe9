"""The HAProxy adapter: the only module that talks to HAProxy.

Three parts:
- `render_config` (pure): one backend per app with two server slots, `blue` and `green`; a
  front door that picks the backend from the Host header through a map file.
- `RuntimeAPI`: HAProxy's runtime API over its admin unix socket (one command per connection).
- `HAProxyRouter`: the `Router` for zero-downtime switches. It supervises a local HAProxy in
  master-worker mode (restarts it when it dies, stops it with the agent) and switches traffic
  with `set server <be>/<slot> addr 127.0.0.1 port P` + `state ready` for the new container,
  `state drain` then (no session left, or drain time over) `state maint` for the old one.
  The config is rewritten and reloaded seamlessly (SIGUSR2 to the master; listening sockets
  are handed over) only when an app is added or removed, or its domains change — never to
  switch a deploy.

Routes are persisted in `routes.json` *before* the runtime API is told, and the config is
rendered from them on every start/reload with the serving slot enabled at its current address,
so an agent or HAProxy restart brings every route back.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from agent.router import RouteStore, RouterError, Target

log = logging.getLogger(__name__)

SLOTS = ("blue", "green")
PLACEHOLDER_PORT = 1  # an unused slot points here, in maintenance; never gets traffic
UNKNOWN_BACKEND = "no_app"
READY_TIMEOUT = 10.0
API_RETRY_SECONDS = 5.0
DRAIN_POLL = 0.05
MAX_SOCKET_PATH = 100
DEFAULT_SERVER_MAXCONN = 0  # 0: no per-container limit  # sun_path is 108 bytes on Linux
HOST_RE = re.compile(r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


def haproxy_binary() -> str | None:
    return shutil.which(os.environ.get("TUGBOAT_HAPROXY", "haproxy")) or (
        "/usr/sbin/haproxy" if os.access("/usr/sbin/haproxy", os.X_OK) else None)


def backend_name(app: str) -> str:
    return f"app_{app}"


def normalize_host(host: str) -> str:
    """`Example.COM:8000` -> `example.com`; raises ValueError for anything not a host name."""
    host = (host or "").strip().lower().rstrip(".")
    if ":" in host:
        host, _, port = host.partition(":")
        if not port.isdigit():
            raise ValueError(f"invalid domain {host!r}")
    if not HOST_RE.match(host):
        raise ValueError(f"invalid domain {host!r}: use a DNS host name (letters, digits, '-', '.')")
    return host


def app_hosts(app: str, domains: Sequence[str]) -> list[str]:
    hosts = [f"{app}.localhost"]
    for domain in domains:
        if domain not in hosts:
            hosts.append(domain)
    return hosts


# ---- config rendering (pure) -----------------------------------------------------------------
@dataclass(frozen=True)
class RenderedConfig:
    config: str
    host_map: str


def render_config(*, front_host: str, front_port: int, run_dir: Path, generation: int,
                  routes: dict[str, dict], server_maxconn: int = 0) -> RenderedConfig:
    """haproxy.cfg and hosts.map for `routes` (app -> persisted route entry).

    The serving slot of each app is enabled at its container's address; the other slot is
    disabled (maintenance). `node` carries the generation so a reload can be confirmed.
    """
    map_path = run_dir / "hosts.map"
    lines = [
        "# Written by the Tugboat agent; changes are overwritten.",
        "global",
        "    master-worker",
        f"    node tugboat-{generation}",
        f"    stats socket {run_dir / 'admin.sock'} mode 600 level admin expose-fd listeners",
        "    stats timeout 30s",
        "    maxconn 4096",
        # After a reload the previous worker finishes its in-flight requests, bounded.
        "    hard-stop-after 120s",
        "",
        "defaults",
        "    mode http",
        "    option http-keep-alive",
        "    option redispatch 1",
        # Only retry when the connection to the container could not be made: the request was
        # never sent, so even a POST is not duplicated.
        "    retries 3",
        "    retry-on conn-failure",
        "    timeout connect 3s",
        "    timeout client 60s",
        "    timeout server 60s",
        "    timeout http-request 30s",
        "    timeout http-keep-alive 60s",
        "    timeout queue 30s",
    ]
    if server_maxconn > 0:
        # At most this many connections at once to one container; more wait in HAProxy's queue
        # instead of overflowing the app's listen backlog (dropped SYNs cost 1 s each).
        lines.append(f"    default-server maxconn {server_maxconn}")
    lines += [
        "",
        "frontend front_door",
        f"    bind {front_host}:{front_port}",
        "    http-request set-var(txn.route_host) req.hdr(host),field(1,:),lower",
        f"    use_backend %[var(txn.route_host),map({map_path},{UNKNOWN_BACKEND})]",
        f"    default_backend {UNKNOWN_BACKEND}",
        "",
        f"backend {UNKNOWN_BACKEND}",
        '    http-request return status 404 content-type "text/plain" '
        'string "no app is routed for this host"',
    ]
    map_lines = []
    for app in sorted(routes):
        entry = routes[app]
        serving_slot = entry.get("slot") or ""
        port = int(entry.get("host_port") or 0)
        lines += ["", f"backend {backend_name(app)}", "    balance roundrobin"]
        for slot in SLOTS:
            if slot == serving_slot and entry.get("container_id") and port:
                lines.append(f"    server {slot} 127.0.0.1:{port}")
            else:
                lines.append(f"    server {slot} 127.0.0.1:{PLACEHOLDER_PORT} disabled")
        for host in app_hosts(app, entry.get("domains") or []):
            map_lines.append(f"{host} {backend_name(app)}")
    return RenderedConfig("\n".join(lines) + "\n", "\n".join(map_lines) + ("\n" if map_lines else ""))


# ---- runtime API ------------------------------------------------------------------------------
class RuntimeAPI:
    """HAProxy's runtime API on a unix socket; one command per connection."""

    def __init__(self, path: Path, timeout: float = 5.0) -> None:
        self.path = Path(path)
        self.timeout = timeout

    def command(self, command: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout)
            sock.connect(str(self.path))
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        return b"".join(chunks).decode("utf-8", "replace")

    def _checked(self, command: str) -> str:
        out = self.command(command)
        low = out.lower()
        if "no such" in low or "unknown command" in low or "require" in low or "invalid" in low \
                or "permission denied" in low:
            raise RouterError(f"haproxy refused {command!r}: {out.strip()}")
        return out

    def set_server_addr(self, backend: str, server: str, host: str, port: int) -> None:
        self._checked(f"set server {backend}/{server} addr {host} port {port}")

    def set_server_state(self, backend: str, server: str, state: str) -> None:
        self._checked(f"set server {backend}/{server} state {state}")

    def info(self) -> dict[str, str]:
        out = {}
        for line in self.command("show info").splitlines():
            key, sep, value = line.partition(":")
            if sep:
                out[key.strip()] = value.strip()
        return out

    def stats(self) -> list[dict[str, str]]:
        """`show stat` as dicts keyed by the CSV header (pxname, svname, scur, status, ...)."""
        text = self.command("show stat")
        rows = [line for line in text.splitlines() if line]
        if not rows or not rows[0].startswith("# "):
            raise RouterError(f"unexpected 'show stat' answer: {text[:200]!r}")
        header = rows[0][2:].split(",")
        return [dict(zip(header, row.split(","))) for row in rows[1:]]

    def server_stat(self, backend: str, server: str) -> dict[str, str]:
        for row in self.stats():
            if row.get("pxname") == backend and row.get("svname") == server:
                return row
        raise RouterError(f"haproxy has no server {backend}/{server}")

    def servers_state(self, backend: str) -> str:
        return self.command(f"show servers state {backend}")


# ---- process supervision ------------------------------------------------------------------------
class HAProxyProcess:
    """A local HAProxy in master-worker mode, restarted when it dies.

    `render(generation)` writes the config files; it is called on every start and reload.
    `lock` is shared with the router so a (re)start never interleaves with a route change.
    """

    def __init__(self, binary: str, run_dir: Path, config_path: Path,
                 render: Callable[[int], None], lock: threading.RLock) -> None:
        self.binary = binary
        self.run_dir = run_dir
        self.config_path = config_path
        self.render = render
        self.lock = lock
        self.api = RuntimeAPI(run_dir / "admin.sock")
        self.master_socket = run_dir / "master.sock"
        self.pidfile = run_dir / "haproxy.pid"
        self.logfile = run_dir / "haproxy.log"
        self.generation = 0
        self.restarts = 0
        self._proc: subprocess.Popen | None = None
        self._stopping = threading.Event()
        self._monitor: threading.Thread | None = None

    # -- lifecycle
    def start(self) -> None:
        with self.lock:
            self._stopping.clear()
            self._kill_orphan()
            self._spawn()
        self._monitor = threading.Thread(target=self._watch, name="haproxy-supervisor", daemon=True)
        self._monitor.start()

    def stop(self) -> None:
        self._stopping.set()
        with self.lock:
            proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self._monitor is not None:
            self._monitor.join(timeout=5)
        self.pidfile.unlink(missing_ok=True)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def master_pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def worker_pids(self) -> list[int]:
        pid = self.master_pid
        if pid is None:
            return []
        try:
            text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        except OSError:
            return []
        return [int(x) for x in text.split()]

    def reload(self) -> None:
        """Re-render and reload seamlessly (the listening sockets pass to the new worker)."""
        with self.lock:
            if not self.running:
                self._render_checked()  # written for the next start
                return
            generation = self._render_checked()
            os.kill(self._proc.pid, signal.SIGUSR2)
            self._wait_ready(generation)

    # -- internals
    def _render_checked(self) -> int:
        self.generation += 1
        self.render(self.generation)
        check = subprocess.run([self.binary, "-c", "-q", "-f", str(self.config_path)],
                               capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise RouterError(f"haproxy rejected the rendered config {self.config_path}: "
                              f"{(check.stderr or check.stdout).strip()[-2000:]}")
        return self.generation

    def _spawn(self) -> None:
        generation = self._render_checked()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.logfile, "ab") as logfh:
            self._proc = subprocess.Popen(
                [self.binary, "-W", "-S", f"{self.master_socket},mode,600",
                 "-f", str(self.config_path), "-p", str(self.pidfile)],
                stdin=subprocess.DEVNULL, stdout=logfh, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True)
        try:
            self._wait_ready(generation)
        except RouterError:
            self._proc.kill()
            self._proc.wait()
            raise
        log.info("haproxy started (master pid %s, generation %d)", self._proc.pid, generation)

    def _wait_ready(self, generation: int) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        want = f"tugboat-{generation}"
        last = ""
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                break
            try:
                if self.api.info().get("node") == want:
                    return
            except OSError as exc:
                last = str(exc)
            time.sleep(0.02)
        raise RouterError(f"haproxy did not come up with config generation {generation} "
                          f"({last or 'process exited'}); log tail:\n{self._log_tail()}")

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _kill_orphan(self) -> None:
        """A master left by an agent that died hard would hold the front door: end it."""
        try:
            pid = int(self.pidfile.read_text().split()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError, IndexError):
            return
        if str(self.config_path) not in cmdline:
            return
        log.warning("stopping haproxy %d left over from a previous agent run", pid)
        try:
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.05)
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _watch(self) -> None:
        backoff = 0.1
        while not self._stopping.is_set():
            proc = self._proc
            if proc is None:
                return
            rc = proc.wait()
            if self._stopping.is_set():
                return
            log.warning("haproxy exited with %s; restarting it", rc)
            while not self._stopping.is_set():
                if self._stopping.wait(backoff):
                    return
                try:
                    with self.lock:
                        if self._stopping.is_set():
                            return
                        self._spawn()
                    self.restarts += 1
                    backoff = 0.1
                    break
                except Exception as exc:  # port still held by a dying worker, etc.
                    log.warning("haproxy restart failed: %s", exc)
                    backoff = min(backoff * 2, 5.0)


# ---- the router -------------------------------------------------------------------------------------
def _run_dir(state_dir: Path) -> Path:
    """`<state_dir>/haproxy`, unless its socket paths would not fit in a sockaddr_un."""
    run_dir = Path(state_dir) / "haproxy"
    if len(str(run_dir / "master.sock")) <= MAX_SOCKET_PATH:
        return run_dir
    digest = hashlib.sha1(str(Path(state_dir).resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"tugboat-haproxy-{digest}"


class HAProxyRouter:
    """Zero-downtime routing through a supervised local HAProxy (see module docstring)."""

    def __init__(self, state_dir: Path, *, front_host: str = "127.0.0.1", front_port: int = 8000,
                 binary: str | None = None, routes_file: Path | None = None,
                 server_maxconn: int | None = None) -> None:
        self.state_dir = Path(state_dir)
        if server_maxconn is None:
            server_maxconn = int(os.environ.get("TUGBOAT_SERVER_MAXCONN") or DEFAULT_SERVER_MAXCONN)
        self.server_maxconn = server_maxconn
        self.front_host = front_host
        self.front_port = front_port
        self.run_dir = _run_dir(self.state_dir)
        self.config_path = self.run_dir / "haproxy.cfg"
        self.map_path = self.run_dir / "hosts.map"
        self.store = RouteStore(routes_file or self.state_dir / "routes.json")
        self._lock = threading.RLock()
        binary = binary or haproxy_binary()
        if not binary:
            raise RouterError("haproxy is not installed; install it or use the direct router")
        self.process = HAProxyProcess(binary, self.run_dir, self.config_path, self._render,
                                      self._lock)
        self.api = self.process.api

    # -- lifecycle
    @property
    def front_door(self) -> str:
        return f"{self.front_host}:{self.front_port}"

    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.run_dir.parent != self.state_dir:  # socket path too long: leave a pointer
            pointer = self.state_dir / "haproxy"
            if not pointer.exists():
                pointer.symlink_to(self.run_dir)
        self.process.start()

    def close(self) -> None:
        self.process.stop()

    def app_url(self, app: str) -> str:
        return f"http://{app}.localhost:{self.front_port}"

    # -- rendering
    def _render(self, generation: int) -> None:
        with self._lock:
            routes = self.store.load()
            rendered = render_config(front_host=self.front_host, front_port=self.front_port,
                                     run_dir=self.run_dir, generation=generation, routes=routes,
                                     server_maxconn=self.server_maxconn)
            self.run_dir.mkdir(parents=True, exist_ok=True)
            _write_atomic(self.map_path, rendered.host_map)
            _write_atomic(self.config_path, rendered.config)

    # -- Router protocol
    def ensure_app(self, app: str, domains: Sequence[str] = ()) -> None:
        try:
            wanted = [normalize_host(d) for d in domains]
        except ValueError as exc:
            raise RouterError(str(exc)) from exc
        wanted = list(dict.fromkeys(d for d in wanted if d != f"{app}.localhost"))
        with self._lock:
            routes = self.store.load()
            for other, entry in routes.items():
                if other == app:
                    continue
                taken = set(app_hosts(other, entry.get("domains") or []))
                clash = taken.intersection(app_hosts(app, wanted))
                if clash:
                    raise RouterError(f"host {sorted(clash)[0]} is already routed to app {other}")
            entry = routes.get(app)
            if entry is not None and list(entry.get("domains") or []) == wanted:
                return
            previous = dict(entry) if entry is not None else None
            entry = dict(entry or {"container_id": "", "slot": "", "host_port": 0,
                                   "url": self.app_url(app)})
            entry["domains"] = wanted
            routes[app] = entry
            self._save(routes)
            try:
                self.process.reload()
            except RouterError:
                if previous is None:
                    routes.pop(app, None)
                else:
                    routes[app] = previous
                self._save(routes)
                raise

    def switch(self, app: str, target: Target) -> str:
        if not target.host_port:
            raise RouterError(f"container {target.container_id[:12]} has no published port")
        with self._lock:
            if app not in self.store.load():
                self.ensure_app(app)  # first route for the app: nothing serves it yet
            routes = self.store.load()
            entry = routes[app]
            previous = dict(entry)
            current_slot = entry.get("slot") or ""
            if current_slot and entry.get("container_id") == target.container_id:
                new_slot, old_slot = current_slot, ""  # same container (restore after restart)
            else:
                new_slot = SLOTS[1] if current_slot == SLOTS[0] else SLOTS[0]
                old_slot = current_slot
            entry.update(container_id=target.container_id, host_port=target.host_port,
                         slot=new_slot, url=self.app_url(app), draining=old_slot)
            # Persist first: a reload or restart from now on renders the new route.
            self._save(routes)
            be = backend_name(app)
            try:
                self._api_retry(lambda: self.api.set_server_addr(be, new_slot, "127.0.0.1",
                                                                 target.host_port))
                self._api_retry(lambda: self.api.set_server_state(be, new_slot, "ready"))
                other = old_slot or next(s for s in SLOTS if s != new_slot)
                self._api_retry(lambda: self.api.set_server_state(
                    be, other, "drain" if old_slot else "maint"))
            except (RouterError, OSError) as exc:
                routes[app] = previous
                self._save(routes)
                self._restore_runtime(app, previous)
                raise RouterError(f"cannot switch {app} to {target.container_id[:12]}: {exc}") from exc
            return entry["url"]

    def drain(self, app: str, seconds: float) -> str:
        be = backend_name(app)
        with self._lock:
            entry = self.store.load().get(app) or {}
        old_slot = entry.get("draining") or ""
        if not old_slot:
            return "nothing to drain"
        started = time.monotonic()
        deadline = started + max(0.0, seconds)
        in_flight = -1
        while True:
            try:
                row = self.api.server_stat(be, old_slot)
                in_flight = int(row.get("scur") or 0) + int(row.get("qcur") or 0)
            except (RouterError, OSError, ValueError):
                in_flight = -1  # haproxy restarting: it came back without the old slot anyway
            if in_flight == 0 or time.monotonic() >= deadline:
                break
            time.sleep(DRAIN_POLL)
        with self._lock:
            routes = self.store.load()
            current = routes.get(app)
            if current is not None and current.get("draining") == old_slot:
                try:
                    self._api_retry(lambda: self.api.set_server_state(be, old_slot, "maint"))
                except (RouterError, OSError) as exc:
                    log.warning("could not put %s/%s in maintenance: %s", be, old_slot, exc)
                current["draining"] = ""
                self._save(routes)
        waited = time.monotonic() - started
        if in_flight > 0:
            return (f"drain of slot {old_slot} stopped after {waited:.1f}s with {in_flight} "
                    "request(s) still in flight")
        return f"slot {old_slot} drained in {waited:.2f}s"

    def current(self, app: str) -> str | None:
        with self._lock:
            entry = self.store.load().get(app)
        return (entry.get("container_id") or None) if entry else None

    def url(self, app: str) -> str | None:
        with self._lock:
            entry = self.store.load().get(app)
        return entry.get("url") if entry and entry.get("container_id") else None

    def apps(self) -> list[str]:
        with self._lock:
            return sorted(self.store.load())

    def remove(self, app: str) -> None:
        with self._lock:
            routes = self.store.load()
            if routes.pop(app, None) is None:
                return
            self._save(routes)
            self.process.reload()

    # -- helpers
    def _save(self, routes: dict) -> None:
        try:
            self.store.save(routes)
        except OSError as exc:
            raise RouterError(f"cannot write {self.store.path}: {exc}") from exc

    def _api_retry(self, call: Callable[[], None]) -> None:
        """Run a runtime API call, waiting out a restart of HAProxy by its supervisor."""
        deadline = time.monotonic() + API_RETRY_SECONDS
        while True:
            try:
                return call()
            except OSError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)

    def _restore_runtime(self, app: str, entry: dict) -> None:
        be = backend_name(app)
        try:
            for slot in SLOTS:
                if slot == entry.get("slot") and entry.get("host_port"):
                    self.api.set_server_addr(be, slot, "127.0.0.1", int(entry["host_port"]))
                    self.api.set_server_state(be, slot, "ready")
                else:
                    self.api.set_server_state(be, slot, "maint")
        except (RouterError, OSError) as exc:
            log.warning("could not restore the route of %s: %s", app, exc)


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
