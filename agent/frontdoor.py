"""Console entry point `tugboat-frontdoor`: the front door (HAProxy) as a service of its own.

The data plane must outlive the control processes: this service, not the agent, owns HAProxy.
It runs one master-worker HAProxy from the agent's run directory, renders its config from the
persisted routes whenever it (re)starts it (so every route comes back while no agent runs),
restarts it with back-off when it exits, and stops it only when the service itself is told to
stop (SIGTERM/SIGINT). Agents adopt it through its sockets and never stop it.

Invariant: at most one service per run directory, held by a flock on `frontdoor.lock` (released
by the kernel however the service dies); a second one exits at once with status 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from agent.config import DEFAULT_FRONT_DOOR_PORT, default_home, https_front_door, parse_front_door
from agent.frontdoor_files import FrontDoorFiles, Settings, try_lock
from agent.haproxy_process import HAProxyMaster, haproxy_binary, running_master, worker_pids
from agent.haproxy_runtime import RuntimeAPI

log = logging.getLogger(__name__)

STOP_TIMEOUT = 10.0


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tugboat-frontdoor",
        description="Tugboat's front door: a supervised HAProxy that outlives the agent")
    parser.add_argument("--state-dir", default=None,
                        help="the agent's state directory (default $TUGBOAT_HOME or "
                             "<repo>/.serversinc/agent)")
    parser.add_argument("--routes", default=None, help="routes file (default <state-dir>/routes.json)")
    parser.add_argument("--front-door", default=None, metavar="HOST:PORT",
                        help="listen address (default $TUGBOAT_FRONT_DOOR or 127.0.0.1:8000)")
    parser.add_argument("--https", default=None, metavar="HOST:PORT",
                        help="HTTPS listen address, 'off' for none (default $TUGBOAT_HTTPS_FRONT_DOOR, "
                             "else 127.0.0.1:8443 beside the default front door, off beside an "
                             "explicit --front-door)")
    parser.add_argument("--server-maxconn", type=int, default=None,
                        help="connections per container, 0 unlimited (default $TUGBOAT_SERVER_MAXCONN)")
    parser.add_argument("--detach", action="store_true",
                        help="leave the caller's session and process tree (the agent starts it so)")
    parser.add_argument("--check", action="store_true",
                        help="exit 0 when the front door of this state directory answers, else 1")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    explicit = args.front_door or os.environ.get("TUGBOAT_FRONT_DOOR")
    host, port = parse_front_door(explicit or str(DEFAULT_FRONT_DOOR_PORT))
    maxconn = args.server_maxconn
    if maxconn is None:
        maxconn = int(os.environ.get("TUGBOAT_SERVER_MAXCONN") or 0)
    https_host, https_port = https_front_door(args.https or os.environ.get("TUGBOAT_HTTPS_FRONT_DOOR"),
                                              bool(explicit), host)
    return Settings(host, port, maxconn, https_host if https_port else "", https_port)


def files_from(args: argparse.Namespace) -> FrontDoorFiles:
    state_dir = Path(args.state_dir) if args.state_dir else default_home()
    return FrontDoorFiles.for_state(state_dir, Path(args.routes) if args.routes else None)


def service_pid(files: FrontDoorFiles) -> int | None:
    """The pid of the service running for `files`, or None when none holds the lock."""
    probe = try_lock(files.service_lock)
    if probe is not None:
        probe.close()
        return None
    try:
        pid = int(files.service_pid.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        # Held, and its pid not written yet: the file is missing, or still names a service that
        # was killed (a new one took the lock before rewriting it).
        return -1


def answers(files: FrontDoorFiles) -> bool:
    try:
        return bool(RuntimeAPI(files.admin_socket, timeout=2).info().get("node"))
    except OSError:
        return False


def stop(files: FrontDoorFiles, timeout: float = STOP_TIMEOUT) -> None:
    """Stop the service of `files` and its HAProxy (tests, scripts): SIGTERM, then SIGKILL of
    whatever is still running when `timeout` is over."""
    pid = service_pid(files)
    if pid and pid > 0:
        _signal_and_wait(pid, timeout)
    master = running_master(files)
    if master is not None:
        for child in [master] + worker_pids(master):
            _signal_and_wait(child, 0, signal.SIGKILL)


def _signal_and_wait(pid: int, timeout: float, sig: int = signal.SIGTERM) -> None:
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        os.kill(pid, sig)
        if not select.select([pidfd], [], [], timeout)[0] and sig != signal.SIGKILL:
            os.kill(pid, signal.SIGKILL)
            select.select([pidfd], [], [], timeout)
    except ProcessLookupError:
        pass
    finally:
        os.close(pidfd)


def _detach() -> None:
    """Double fork: the caller reaps the first process at once, the service is nobody's child."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)


def main(argv=None) -> int:
    args = parse_args(argv)
    files = files_from(args)
    if args.check:
        return 0 if answers(files) else 1
    if args.detach:
        _detach()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    binary = haproxy_binary()
    if not binary:
        print("tugboat-frontdoor: haproxy is not installed", flush=True)
        return 1
    lock = try_lock(files.service_lock)
    if lock is None:
        print(f"tugboat-frontdoor: a front door already runs for {files.run_dir}", flush=True)
        return 0
    settings = settings_from(args)
    files.save_settings(settings)
    files.service_pid.write_text(f"{os.getpid()}\n")
    wake_r, wake_w = os.pipe()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: os.write(wake_w, b"x"))
    master = HAProxyMaster(binary, files, settings)
    print(f"tugboat-frontdoor on {settings.front_door} (run dir {files.run_dir})", flush=True)
    try:
        master.run(wake_r)
    finally:
        master.stop()
        files.service_pid.unlink(missing_ok=True)
        lock.close()
    return 0


def start_detached(files: FrontDoorFiles, settings: Settings, timeout: float = 15.0) -> None:
    """Start a service for `files` in its own session (not the caller's child: it survives the
    caller) and wait until its HAProxy answers. Another caller's service winning the race is fine."""
    files.run_dir.mkdir(parents=True, exist_ok=True)
    with open(files.service_log, "ab") as logfh:
        subprocess.run([sys.executable, "-m", "agent.frontdoor", "--detach",
                        "--state-dir", str(files.state_dir), "--routes", str(files.routes_file),
                        "--front-door", settings.front_door,
                        "--server-maxconn", str(settings.server_maxconn),
                        "--https", settings.https_front_door or "off"],
                       stdin=subprocess.DEVNULL, stdout=logfh, stderr=subprocess.STDOUT,
                       start_new_session=True, close_fds=True, check=True, timeout=30)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if answers(files) and (service_pid(files) or 0) > 0:
            return
        time.sleep(0.05)


if __name__ == "__main__":
    raise SystemExit(main())
