"""HAProxy process supervision: a local HAProxy in master-worker mode, restarted when it dies.

The data plane must outlive hiccups of the control process: when the master dies the
supervisor thread starts a new one from the persisted routes (with back-off while the port is
still held), and a master left by an agent that died hard is ended before a new one starts.
Reloads are seamless (SIGUSR2 to the master; the listening sockets pass to the new worker) and
confirmed by the config generation HAProxy reports as its `node`.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable

from agent.haproxy_runtime import RuntimeAPI
from agent.router import RouterError

log = logging.getLogger(__name__)

READY_TIMEOUT = 10.0


def haproxy_binary() -> str | None:
    return shutil.which(os.environ.get("TUGBOAT_HAPROXY", "haproxy")) or (
        "/usr/sbin/haproxy" if os.access("/usr/sbin/haproxy", os.X_OK) else None)


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
