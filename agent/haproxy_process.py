"""HAProxy master supervision for the front door service: start or adopt, watch, restart.

The front door service (`agent.frontdoor`) runs HAProxy in master-worker mode with its master CLI
and admin sockets in the run directory. A master it finds running (left by a service that died
hard) is adopted, not killed: it keeps serving. When the master exits (a crash, a kill -9) a new
one is started from the persisted routes, with back-off while the port is still held. Exits are
seen through a pidfd, so a master that is not the service's child is watched the same way.
"""

from __future__ import annotations

import logging
import os
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path

from agent.frontdoor_files import FrontDoorFiles, Settings, log_tail, node_generation
from agent.haproxy_runtime import RuntimeAPI
from agent.router import RouterError

log = logging.getLogger(__name__)

READY_TIMEOUT = 10.0
FIRST_BACKOFF = 0.1
MAX_BACKOFF = 5.0


def haproxy_binary() -> str | None:
    return shutil.which(os.environ.get("TUGBOAT_HAPROXY", "haproxy")) or (
        "/usr/sbin/haproxy" if os.access("/usr/sbin/haproxy", os.X_OK) else None)


def next_backoff(current: float) -> float:
    """Double the wait after a failed start, up to MAX_BACKOFF."""
    return min(max(current, FIRST_BACKOFF) * 2, MAX_BACKOFF)


def wait_generation(api: RuntimeAPI, generation: int, alive=lambda: True,
                    timeout: float = READY_TIMEOUT) -> None:
    """Until HAProxy reports a config generation >= `generation` on its admin socket."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline and alive():
        try:
            if node_generation(api.info().get("node", "")) >= generation:
                return
        except OSError as exc:
            last = str(exc)
        time.sleep(0.02)
    raise RouterError(f"haproxy did not come up with config generation {generation} "
                      f"({last or ('timed out' if alive() else 'process exited')})")


def running_master(files: FrontDoorFiles) -> int | None:
    """The pid of the HAProxy master serving this run directory (from its pidfile), if alive."""
    try:
        pid = int(files.haproxy_pid.read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except (OSError, ValueError, IndexError):
        return None
    return pid if str(files.config) in cmdline else None


def worker_pids(master_pid: int | None) -> list[int]:
    if master_pid is None:
        return []
    try:
        return [int(x) for x in Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()]
    except OSError:
        return []


class HAProxyMaster:
    """One HAProxy master for `files`, kept running until `stop()` (see module docstring)."""

    def __init__(self, binary: str, files: FrontDoorFiles, settings: Settings) -> None:
        self.binary = binary
        self.files = files
        self.settings = settings
        self.api = RuntimeAPI(files.admin_socket)
        self.pid: int | None = None
        self.restarts = 0
        self._child: subprocess.Popen | None = None

    def run(self, wake_fd: int) -> None:
        """Keep a master running until `wake_fd` becomes readable (the service was told to stop)."""
        backoff = FIRST_BACKOFF
        while True:
            if self.pid is None:
                try:
                    self._adopt() or self._spawn()
                    backoff = FIRST_BACKOFF
                except (RouterError, OSError) as exc:  # port still held by a dying worker, etc.
                    log.warning("haproxy start failed (next try in %.1fs): %s", backoff, exc)
                    if select.select([wake_fd], [], [], backoff)[0]:
                        return
                    backoff = next_backoff(backoff)
                    continue
            try:
                pidfd = os.pidfd_open(self.pid)
            except ProcessLookupError:  # gone between its start (or adoption) and now
                self._reap()
                self.pid = None
                continue
            try:
                ready = select.select([wake_fd, pidfd], [], [])[0]
            finally:
                os.close(pidfd)
            if wake_fd in ready:
                return
            self._reap()
            log.warning("haproxy master %s exited; restarting it", self.pid)
            self.pid = None
            self.restarts += 1

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the master (and so its workers); SIGKILL when it outlives `timeout`."""
        pid, self.pid = self.pid, None
        if pid is None:
            return
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return
        try:
            os.kill(pid, signal.SIGTERM)
            if not select.select([pidfd], [], [], timeout)[0]:
                os.kill(pid, signal.SIGKILL)
                select.select([pidfd], [], [], timeout)
        except ProcessLookupError:
            pass
        finally:
            os.close(pidfd)
            self._reap()
            self.files.haproxy_pid.unlink(missing_ok=True)

    def _reap(self) -> None:
        if self._child is not None:
            self._child.wait()
            self._child = None

    def _adopt(self) -> bool:
        pid = running_master(self.files)
        if pid is None:
            return False
        try:
            self.api.info()
        except OSError:
            return False
        self.pid = pid
        log.info("adopted the running haproxy master %d", pid)
        return True

    def _spawn(self) -> None:
        with self.files.render_lock():
            generation = self.files.render(self.settings, self.binary)
            with open(self.files.haproxy_log, "ab") as logfh:
                child = subprocess.Popen(
                    [self.binary, "-W", "-S", f"{self.files.master_socket},mode,600",
                     "-f", str(self.files.config), "-p", str(self.files.haproxy_pid)],
                    stdin=subprocess.DEVNULL, stdout=logfh, stderr=subprocess.STDOUT,
                    start_new_session=True, close_fds=True)
            try:
                wait_generation(self.api, generation, alive=lambda: child.poll() is None)
            except RouterError as exc:
                child.kill()
                child.wait()
                raise RouterError(f"{exc}; log tail:\n{log_tail(self.files.haproxy_log)}") from None
        self._child, self.pid = child, child.pid
        log.info("haproxy started (master pid %s, generation %d)", child.pid, generation)
