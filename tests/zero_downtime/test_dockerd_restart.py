"""Fault 2: the Docker engine restarted under a running agent. Every app serves again with no
deploy: Docker restarts the containers it stopped (restart policy `unless-stopped`, given at the
gate) on their pinned host ports, and HAProxy's health checks put them back in rotation.

The engine is restarted exactly as it was started (its own command line, read from /proc), so
the suite leaves the machine as it found it. Skipped where the engine is not ours to restart
(no /var/run/docker.pid, e.g. Docker Desktop or a remote DOCKER_HOST)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import docker
import pytest

from tests.support.agent_calls import front_get, wait_until
from tests.support.zd_app import body
from tests.zero_downtime.conftest import ZdApp, done

pytestmark = pytest.mark.docker

PIDFILE = Path("/var/run/docker.pid")


def _engine_command() -> tuple[int, list[str]]:
    try:
        pid = int(PIDFILE.read_text().split()[0])
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    except (OSError, ValueError, IndexError):
        pytest.skip("the Docker engine was not started on this host (no /var/run/docker.pid)")
    if not argv or not argv[0].endswith(b"dockerd"):
        pytest.skip("the Docker engine is not a local dockerd")
    return pid, [a.decode() for a in argv]


def _engine_up() -> bool:
    try:
        return docker.from_env(timeout=5).ping()
    except Exception:
        return False


def _restart_engine(log: Path) -> None:
    pid, argv = _engine_command()
    os.kill(pid, signal.SIGTERM)
    assert wait_until(lambda: not Path(f"/proc/{pid}").exists(), timeout=60), "dockerd did not stop"
    PIDFILE.unlink(missing_ok=True)  # a stale pid file makes the next start refuse
    with open(log, "ab") as out:
        subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True)
    assert wait_until(_engine_up, timeout=60), f"dockerd did not come back; see {log}"


def test_every_app_serves_again_after_dockerd_restarts(agent, make_app_name, tmp_path):
    _engine_command()  # skip early, before deploying anything
    apps = [ZdApp(agent, make_app_name(), tmp_path) for _ in range(2)]
    for app in apps:
        done(app.deploy("v1"))
        assert front_get(agent.front_door, app.host) == (200, body("v1"))

    _restart_engine(tmp_path / "dockerd.log")

    for app in apps:
        assert wait_until(lambda: front_get(agent.front_door, app.host, timeout=1)
                          == (200, body("v1")), timeout=60), app.app
    # The agent still drives them: a redeploy after the restart switches as usual.
    apps[0].add_version("v2")
    done(apps[0].deploy("v2"))
    assert front_get(agent.front_door, apps[0].host) == (200, body("v2"))
    assert front_get(agent.front_door, apps[1].host) == (200, body("v1"))
