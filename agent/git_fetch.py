"""`git fetch` as a subprocess that never prompts, gives up on a silent remote, and can be killed.

A fetch is the one step of a build that waits on somebody else's server. Invariants:
- it never waits for a person: no terminal prompt, no askpass program, no credential helper,
  ssh in batch mode, stdin closed;
- it never waits forever: http(s) aborts below a minimum speed, ssh has a connect timeout and
  keep-alives, and every protocol (git:// has no timeout of its own) is bounded by `deadline`;
- it stops when asked: a cancel kills the whole process group (git and its remote helper, which
  holds the socket), and the process is always reaped, so no thread, pipe or child outlives it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from common.cancel import CancelToken

# A remote slower than LOW_SPEED_BYTES/s for LOW_SPEED_SECONDS (or silent that long) is dropped.
LOW_SPEED_BYTES = 1000
LOW_SPEED_SECONDS = 20
SSH_CONNECT_TIMEOUT = 15
# Upper bound of one fetch when the caller gives no deadline of its own.
FETCH_DEADLINE_SECONDS = 600
# stderr kept for the error message: the tail is where git says why.
STDERR_KEEP = 4096

_NO_PROMPT_CONFIG = (
    f"http.lowSpeedLimit={LOW_SPEED_BYTES}", f"http.lowSpeedTime={LOW_SPEED_SECONDS}",
    "credential.helper=", "core.askPass=", "protocol.ext.allow=never",
)


class FetchFailed(Exception):
    """git fetch exited non-zero, timed out or was cancelled; the message says which."""

    def __init__(self, message: str, *, cancelled: bool = False, timed_out: bool = False) -> None:
        super().__init__(message)
        self.cancelled = cancelled
        self.timed_out = timed_out


def fetch_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a fetch: prompts off everywhere git or ssh could ask for something."""
    env = dict(os.environ if base is None else base)
    env.update({
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "",
        "SSH_ASKPASS": "",
        "GCM_INTERACTIVE": "never",
        "GIT_SSH_COMMAND": (f"ssh -o BatchMode=yes -o ConnectTimeout={SSH_CONNECT_TIMEOUT} "
                            f"-o ServerAliveInterval={SSH_CONNECT_TIMEOUT} -o ServerAliveCountMax=2"),
    })
    env.pop("GIT_SSH", None)
    return env


def fetch_command(args: Sequence[str]) -> list[str]:
    command = ["git"]
    for setting in _NO_PROMPT_CONFIG:
        command += ["-c", setting]
    return command + ["fetch", "--no-progress", *args]


def run_fetch(repo: Path, args: Sequence[str], token: CancelToken, *,
              deadline: float = FETCH_DEADLINE_SECONDS) -> None:
    """Run `git fetch ARGS` in `repo`; FetchFailed on a non-zero exit, the deadline or a cancel."""
    proc = subprocess.Popen(fetch_command(args), cwd=repo, env=fetch_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    killed = threading.Event()

    def kill() -> None:
        killed.set()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    unregister = token.on_cancel(kill)
    timer = threading.Timer(deadline, kill)
    timer.daemon = True
    started = time.monotonic()
    timer.start()
    try:
        # Read stderr to its end (EOF comes when the whole group is gone), keeping only the tail.
        tail = b""
        for chunk in iter(lambda: proc.stderr.read(1024), b""):
            tail = (tail + chunk)[-STDERR_KEEP:]
        code = proc.wait()
    finally:
        timer.cancel()
        unregister()
        if proc.poll() is None:
            kill()
            proc.wait()
        proc.stderr.close()
    if token.cancelled:
        raise FetchFailed("git fetch cancelled", cancelled=True)
    if killed.is_set():
        raise FetchFailed(f"git fetch gave no answer within {time.monotonic() - started:.0f}s "
                          f"(limit {deadline:g}s)", timed_out=True)
    if code != 0:
        text = tail.decode("utf-8", "replace").strip()
        raise FetchFailed(text or f"git fetch exited with status {code}")
