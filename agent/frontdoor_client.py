"""The agent's side of the front door: adopt the running service, reload through its sockets.

An agent never owns HAProxy (see `agent.frontdoor`). At start it takes the run directory's agent
lock (two agents must not drive one front door), starts a detached front door service when none
runs, and adopts it: route changes go over the admin socket, reloads over the master CLI socket
(`reload`, which works across containers sharing the run directory), each confirmed by the
config generation in `show info`. Closing releases the lock and leaves the front door serving.
"""

from __future__ import annotations

import logging
import re
import socket
import time

from agent.frontdoor import service_pid, start_detached
from agent.frontdoor_files import FrontDoorFiles, Settings, log_tail, try_lock
from agent.haproxy_process import READY_TIMEOUT, running_master, wait_generation, worker_pids
from agent.haproxy_runtime import RuntimeAPI, parse_stat
from agent.router import RouterError

log = logging.getLogger(__name__)

# A reload not serving after this long is asked for again (see `FrontDoorClient.reload`).
RESEND_SECONDS = 5.0


class FrontDoorClient:
    """The adopted front door of `files`, rendered with `settings`."""

    def __init__(self, binary: str, files: FrontDoorFiles, settings: Settings) -> None:
        self.binary = binary
        self.files = files
        self.settings = settings
        self.api = RuntimeAPI(files.admin_socket)
        self._agent_lock = None

    def start(self) -> None:
        """Adopt the running front door, starting a detached one when none runs."""
        lock = try_lock(self.files.agent_lock)
        if lock is None:
            raise RouterError(f"another agent drives the front door in {self.files.run_dir}")
        try:
            if not service_pid(self.files):
                log.info("no front door service runs for %s: starting one (detached)",
                         self.files.run_dir)
                start_detached(self.files, self.settings, timeout=READY_TIMEOUT + 5)
            self._wait_answering()
            running = self.files.load_settings()
            if running is not None and running != self.settings:
                raise RouterError(f"the running front door serves {running.front_door} "
                                  f"(maxconn {running.server_maxconn}, HTTPS "
                                  f"{running.https_front_door or 'off'}), not the configured "
                                  f"{self.settings.front_door} (maxconn {self.settings.server_maxconn}, "
                                  f"HTTPS {self.settings.https_front_door or 'off'}): stop it "
                                  "(tugboat-frontdoor's service) or configure the same")
        except BaseException:
            lock.close()
            raise
        self._agent_lock = lock
        log.info("adopted the front door on %s (haproxy master %s)", self.settings.front_door,
                 self.master_pid)

    def close(self) -> None:
        """Let go of the front door; it keeps serving."""
        if self._agent_lock is not None:
            self._agent_lock.close()
            self._agent_lock = None

    @property
    def master_pid(self) -> int | None:
        return running_master(self.files)

    def worker_pids(self) -> list[int]:
        return worker_pids(self.master_pid)

    def reload(self) -> None:
        """Re-render from the routes and reload seamlessly (the listening sockets pass to the new
        worker). While HAProxy is down, the service's restart renders the routes just saved.

        A reload that does not show its generation within RESEND_SECONDS is asked for again: the
        master may have dropped the command (a connection it took while busy), and reloading
        the same config twice only starts one more worker. The error after the whole wait says
        what the master runs (`show proc`) and what HAProxy logged."""
        with self.files.render_lock():
            generation = self.files.render(self.settings, self.binary)
            self._ask_reload()
        deadline = time.monotonic() + READY_TIMEOUT + 5
        while True:
            left = deadline - time.monotonic()
            try:
                wait_generation(self.api, generation, timeout=max(0.1, min(RESEND_SECONDS, left)))
                return
            except RouterError as exc:
                if left <= RESEND_SECONDS:
                    raise RouterError(f"{exc}; the master runs:\n{self._processes()}\n"
                                      f"log tail:\n{log_tail(self.files.haproxy_log)}") from None
            log.warning("config generation %d is not serving %.0f s after its reload: asking the "
                        "haproxy master again", generation, RESEND_SECONDS)
            with self.files.render_lock():
                self._ask_reload()

    def _ask_reload(self) -> None:
        try:
            self._master_command("reload")
        except OSError as exc:
            log.warning("the haproxy master did not take the reload (%s); waiting for its "
                        "restart", exc)

    def _processes(self) -> str:
        try:
            return self._master_query("show proc").strip()
        except OSError as exc:
            return f"(the master CLI does not answer: {exc})"

    def old_worker_stats(self) -> list[list[dict[str, str]]]:
        """`show stat` of every worker a reload left running: each keeps serving the connections
        it held (WebSockets, event streams) until they close, so they count in a drain too.
        Asked through the master CLI (`show proc`, then `@!PID show stat`, measured on 2.6)."""
        try:
            proc = self._master_query("show proc")
        except OSError:
            return []
        old = proc.partition("# old workers")[2].partition("# programs")[0]
        stats = []
        for pid in re.findall(r"^(\d+)\s+worker\b", old, re.M):
            try:
                stats.append(parse_stat(self._master_query(f"@!{pid} show stat")))
            except (OSError, RouterError):
                continue  # it exited meanwhile: nothing of it to count
        return stats

    def _master_query(self, command: str) -> str:
        """The master CLI's answer to `command`; `;quit` makes the master close the connection
        once it answered (without it the CLI waits for the next command)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.files.master_socket))
            sock.sendall(command.encode() + b";quit\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode("utf-8", "replace")

    def _master_command(self, command: str) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.files.master_socket))
            sock.sendall(command.encode() + b"\n")
            try:
                while sock.recv(4096):
                    pass
            except OSError:
                pass  # the master re-executes itself on reload and drops the connection

    def _wait_answering(self) -> None:
        try:
            wait_generation(self.api, 0, alive=lambda: bool(service_pid(self.files)),
                            timeout=READY_TIMEOUT + 5)
        except RouterError as exc:
            raise RouterError(f"the front door in {self.files.run_dir} does not answer: {exc}; "
                              f"service log tail:\n{log_tail(self.files.service_log)}\n"
                              f"haproxy log tail:\n{log_tail(self.files.haproxy_log)}") from None
