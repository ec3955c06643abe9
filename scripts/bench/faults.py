"""Benchmark: the faults of issue 11, each under steady keep-alive load on the front door.

One stack as scripts/run.sh sets it up (scripts/bench/_stack.py: control plane and agent as
processes with mutual TLS, the agent enrolled, its front door service), two apps deployed
through the control plane: `A`, the one each fault hits, and `B`, a bystander. Each case runs
with its own KeepAliveClient per app (tests/support/zd_load.py: one reused connection to
127.0.0.1 with the app's Host header, bounded in time) and checks what the records say:
 1. A's process killed from the host (kill -9 of the child of the container's init): Docker
    restarts it on its pinned port; seconds until the front door answers 200 again, and after
    the container itself answered (issue: within 2 s). A's failures are expected; B fails 0.
 2. dockerd restarted under the running agent (stopped by its pid, started again as
    scripts/lib/setup.sh's ensure_docker does): seconds until each app serves again. Every
    container is down meanwhile, so failures are reported, not required to be 0.
 3. the agent SIGTERMed, SIGKILLed, restarted (then a redeploy of A through it): 0 failures.
 4. HAProxy killed (-9, master and workers): seconds until served (failures reported: the
    listener itself is gone); then a redeploy whose switch meets a second kill succeeds.
 5. the agent SIGKILLed during HEALTH of the first deploy of a new app whose health check
    answers 500, then restarted: nothing routes to it, the deployment ends FAILED, B fails 0.
 6. the control plane SIGKILLed during BUILD, START, HEALTH, SWITCH and STOP_OLD of a redeploy
    of A, then restarted: one terminal state matching what serves, exactly one container
    serving, 0 failures to A and B.

`held` per case: 0 failed requests wherever 0 is required, and a truthful record (the checks
above). Prints one JSON line per case; the last line is one JSON object with `faults` (cases
run), `held`, `failed_requests` (total where 0 is required), `max_recovery_s` and `per_fault`.
Everything it starts is removed at the end, also when it fails midway. dockerd is restarted only
in this benchmark, never in the test suite; `--no-dockerd` skips fault 2 (shared engines).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import _stack
import grpc
from google.protobuf.field_mask_pb2 import FieldMask
from serversinc.v1 import (
    app_pb2,
    app_service_pb2,
    app_service_pb2_grpc,
    deployment_pb2,
    deployment_service_pb2_grpc,
)
from serversinc.v1 import deployment_service_pb2 as ds
from tugboat.v1 import tugboat_pb2, tugboat_pb2_grpc

import docker
from agent.haproxy_process import running_master, worker_pids
from agent.trust import load_or_create_secret
from tests.support.agent_calls import front_get, http_get, wait_until
from tests.support.agent_client import agent_channel
from tests.support.sample_app import commit_files, repo_url
from tests.support.zd_app import DOCKERFILE, body, commit_zd_version, make_zd_repo
from tests.support.zd_load import KeepAliveClient

S = deployment_pb2
TERMINAL = {S.DEPLOYMENT_STATE_SUCCEEDED, S.DEPLOYMENT_STATE_FAILED, S.DEPLOYMENT_STATE_CANCELLED}
LOAD_SECONDS = 180  # a hard bound on each case's load
WAIT_SECONDS = 60  # a hard bound on each wait for a recovery
FRONT_DOOR_AFTER_CONTAINER_S = 2.0  # the issue: front door 200 within 2 s of the container answering
DOCKER_PID_FILE = Path("/var/run/docker.pid")

# Fault 6: the phase to kill the control plane in -> the app settings that make it last a second
# or two (as tests/integration/test_control_plane_faults.py); zero resets a setting to its default.
PHASE_SETTINGS = {
    "BUILD": {},
    "START": {},
    "HEALTH": {"health_interval_ms": 250, "healthy_threshold": 8},
    "SWITCH": {"drain_seconds": 2},
    "STOP_OLD": {"stop_signal": "SIGWINCH", "stop_grace_seconds": 2},  # busybox httpd ignores SIGWINCH
}
SETTING_FIELDS = ("health_interval_ms", "healthy_threshold", "drain_seconds", "stop_signal", "stop_grace_seconds")

# Fault 5: an image whose health path answers 500.
FAIL_CGI = """#!/bin/sh
printf 'Status: 500 Internal Server Error\\r\\nContent-Type: text/plain\\r\\n\\r\\n'
echo "unhealthy on purpose"
"""
FAILING_DOCKERFILE = DOCKERFILE.format(healthcheck="").replace(
    'COPY index.html /www/index.html\n', 'COPY index.html /www/index.html\nCOPY fail /www/cgi-bin/fail\n').replace(
    '"/www/cgi-bin/slow"]', '"/www/cgi-bin/slow","/www/cgi-bin/fail"]')


class Platform:
    """The stack and the calls the cases make: control plane stubs (made again after it
    restarts), the agent over mutual TLS with its secret, the Docker engine."""

    def __init__(self, stack: _stack.Stack, work: Path) -> None:
        self.stack, self.work = stack, work
        self.docker = docker.from_env()
        self.secret = load_or_create_secret(stack.home / "agent" / ".env")
        self.apps_made: list[str] = []
        self.repos: dict[str, object] = {}
        self.versions: dict[str, int] = {}
        self.connect()

    # ---- control plane ----
    def connect(self) -> None:
        self.channel = self.stack.channel()
        self.apps = app_service_pb2_grpc.AppServiceStub(self.channel)
        self.deployments = deployment_service_pb2_grpc.DeploymentServiceStub(self.channel)

    def kill_api(self) -> None:
        self.channel.close()
        self.stack.processes["api"].stop(signal.SIGKILL)

    def start_api(self) -> None:
        self.stack.processes["api"].start()
        self.connect()

    def create_app(self, name: str, repo, **settings) -> None:
        self.apps.CreateApp(app_service_pb2.CreateAppRequest(app=app_pb2.App(
            name=name, repo_url=repo_url(repo), branch="main", port=8080, **settings)), timeout=30)
        self.apps_made.append(name)
        self.repos[name] = repo

    def update_app(self, name: str, **settings) -> None:
        self.apps.UpdateApp(app_service_pb2.UpdateAppRequest(
            app=app_pb2.App(name=f"apps/{name}", **settings),
            update_mask=FieldMask(paths=list(settings))), timeout=30)

    def new_version(self, app: str) -> str:
        """Commit the next version of `app`'s repo; returns the body it will serve."""
        self.versions[app] = self.versions.get(app, 1) + 1
        version = f"v{self.versions[app]}"
        commit_zd_version(self.repos[app], version)
        return body(version)

    def create_deployment(self, app: str) -> str:
        return self.deployments.CreateDeployment(ds.CreateDeploymentRequest(parent=f"apps/{app}"), timeout=30).name

    def watch(self, name: str, timeout: float = 120):
        return self.deployments.WatchDeployment(ds.WatchDeploymentRequest(name=name), timeout=timeout)

    def finished(self, name: str, timeout: float = 180) -> tuple[deployment_pb2.Deployment, list]:
        """The deployment once terminal, and every event of its history."""
        events = list(self.watch(name, timeout))
        dep = self.deployments.GetDeployment(ds.GetDeploymentRequest(name=name), timeout=30)
        return dep, events

    def deploy(self, app: str) -> deployment_pb2.Deployment:
        return self.finished(self.create_deployment(app))[0]

    def get_app(self, app: str) -> app_pb2.App:
        return self.apps.GetApp(app_service_pb2.GetAppRequest(name=f"apps/{app}"), timeout=30)

    # ---- agent ----
    def containers(self, app: str) -> list:
        """The agent's ListContainers for `app` (a channel per call: the agent restarts)."""
        channel = agent_channel(self.stack.agent, certs_dir=self.stack.home / "certs", secret=self.secret)
        try:
            stub = tugboat_pb2_grpc.TugboatServiceStub(channel)
            return list(stub.ListContainers(tugboat_pb2.ListContainersRequest(app=app), timeout=10).containers)
        finally:
            channel.close()

    def serving(self, app: str) -> list:
        return [c for c in self.containers(app) if c.serving and c.state == "running"]

    def kill_agent(self, sig: int) -> None:
        self.stack.processes["agent"].stop(sig)

    def start_agent(self) -> None:
        self.stack.processes["agent"].start()

    # ---- data plane ----
    def host(self, app: str) -> str:
        return f"{app}.localhost"

    def front(self, app: str) -> tuple[int, str]:
        try:
            return front_get(self.stack.front_door, self.host(app), timeout=1)
        except OSError as err:
            return 0, str(err)

    def serves(self, app: str, text: str) -> bool:
        return self.front(app) == (200, text)

    def docker_container(self, app: str):
        (container,) = self.docker.containers.list(filters={"label": f"io.serversinc.app={app}", "status": "running"})
        return container

    def cleanup(self) -> None:
        """Delete every app it made (the agent removes their containers and images), then sweep
        what a failure midway left behind by their labels."""
        try:
            if self.stack.processes["api"].proc is None:
                self.start_api()
            if self.stack.processes["agent"].proc is None:
                self.start_agent()
        except Exception as err:  # noqa: BLE001 - sweep below anyway
            print(f"cleanup: {err}", flush=True)
        for app in self.apps_made:
            try:
                self.apps.DeleteApp(app_service_pb2.DeleteAppRequest(name=f"apps/{app}"), timeout=60)
            except grpc.RpcError as err:
                print(f"cleanup: delete {app}: {err.details()}", flush=True)
        self.channel.close()
        for app in self.apps_made:
            for c in self.docker.containers.list(all=True, filters={"label": f"io.serversinc.app={app}"}):
                c.remove(force=True)
            for image in self.docker.images.list(filters={"label": f"io.serversinc.app={app}"}):
                try:
                    self.docker.images.remove(image.id, force=True)
                except docker.errors.APIError as err:
                    print(f"cleanup: image {image.id}: {err}", flush=True)


# ---- load and what it saw ---------------------------------------------------------------------------
@contextmanager
def load(platform: Platform, *apps: str):
    """A KeepAliveClient per app for the block; yields {app: client}, stopped on exit."""
    clients = {app: KeepAliveClient(platform.stack.front_door, platform.host(app), max_seconds=LOAD_SECONDS)
               for app in apps}
    for client in clients.values():
        client.start()
    try:
        if not wait_until(lambda: all(len(c.samples) >= 20 for c in clients.values()), timeout=15):
            raise RuntimeError("no steady load to start from")
        yield clients
    finally:
        for client in clients.values():
            client.stop()


def more_samples(clients: dict, count: int = 50, timeout: float = 20) -> None:
    """Wait until each client made `count` more requests (the load went on through the fault)."""
    marks = {app: len(c.samples) for app, c in clients.items()}
    wait_until(lambda: all(len(c.samples) >= marks[a] + count for a, c in clients.items()), timeout=timeout)


def failed(client: KeepAliveClient) -> int:
    return len(client.failures())


def served_again_s(client: KeepAliveClient, since: float) -> float:
    """Seconds from `since` until the first 200 after the last failed request (0: none failed)."""
    samples = list(client.samples)
    last = max((i for i, s in enumerate(samples) if s.status != 200), default=None)
    if last is None:
        return 0.0
    after = next((s for s in samples[last + 1:] if s.status == 200), None)
    return round((after.end if after else float("inf")) - since, 3)


def last_body_is(client: KeepAliveClient, text: str) -> bool:
    return wait_until(lambda: client.samples and client.samples[-1].body == text, timeout=10)


def one_serving(platform: Platform, app: str, text: str) -> bool:
    """Exactly one container serves `app` and the front door answers `text` for it."""
    return wait_until(lambda: len(platform.serving(app)) == 1 and platform.serves(app, text), timeout=WAIT_SECONDS)


def result(fault: str, clients: dict, required: tuple[str, ...], recovery_s: float, checks: dict,
           seconds: float, **extra) -> dict:
    """One case's line; `checks` names each check of the record (truthful: all of them hold)."""
    failures = {app: failed(c) for app, c in clients.items()}
    requests = {app: len(c.samples) for app, c in clients.items()}
    required_failed = sum(failures.get(app, 0) for app in required)
    truthful = all(checks.values())
    line = {"fault": fault, "requests": requests, "failed": failures, "failed_required": required_failed,
            "zero_required_for": list(required), "recovery_s": recovery_s, "truthful": truthful,
            "failed_checks": [name for name, ok in checks.items() if not ok],
            "held": required_failed == 0 and truthful, "seconds": round(seconds, 1), **extra}
    print(json.dumps(line), flush=True)
    return line


# ---- the faults ---------------------------------------------------------------------------------------
def fault_app_process_killed(p: Platform, a: str, b: str, text_a: str) -> dict:
    started = time.monotonic()
    container = p.docker_container(a)
    port = container.labels["io.serversinc.host-port"]
    init = container.attrs["State"]["Pid"]
    (child,) = Path(f"/proc/{init}/task/{init}/children").read_text().split()
    answered = {}

    def watch_container():  # when the restarted container itself answers on its pinned port
        down = False
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            try:
                ok = http_get(f"http://127.0.0.1:{port}/", timeout=0.5)[0] == 200
            except OSError:
                ok = False
            if not ok:
                down = True
            elif down:
                answered["at"] = time.monotonic()
                return
            time.sleep(0.01)

    with load(p, a, b) as clients:
        watcher = threading.Thread(target=watch_container, daemon=True)
        watcher.start()
        killed = time.monotonic()
        os.kill(int(child), signal.SIGKILL)
        back = wait_until(lambda: failed(clients[a]) and clients[a].samples[-1].status == 200
                          and p.serves(a, text_a), timeout=WAIT_SECONDS)
        watcher.join(WAIT_SECONDS)
        more_samples(clients)
    recovery = served_again_s(clients[a], killed)
    after_container = round(killed + recovery - answered["at"], 3) if "at" in answered else None
    container.reload()
    infos = [c for c in p.containers(a) if c.id == container.id]
    checks = {
        "served again": back,
        "agent lists it serving, restarted": bool(infos and infos[0].serving and infos[0].restart_count >= 1),
        "same pinned port": container.ports.get("8080/tcp", [{}])[0].get("HostPort") == port,
        f"front door <= {FRONT_DOOR_AFTER_CONTAINER_S} s after the container":
            after_container is not None and after_container <= FRONT_DOOR_AFTER_CONTAINER_S,
        # Serving again, and the record says it crashed: DEGRADED for services.health's flap window.
        "app status DEGRADED, restart named": wait_until(lambda: restart_recorded(p.get_app(a)), timeout=15),
    }
    app = p.get_app(a)
    return result("1 app process kill -9", clients, (b,), recovery, checks, time.monotonic() - started,
                  front_door_after_container_s=after_container, app_status=app_pb2.AppStatus.Name(app.status),
                  health_detail=app.health_detail,
                  restart_count=infos[0].restart_count if infos else None)


def restart_recorded(app) -> bool:
    return app.status == app_pb2.APP_STATUS_DEGRADED and "restarted by Docker" in app.health_detail


def dockerd_pid() -> int:
    pid = int(DOCKER_PID_FILE.read_text().strip())
    assert Path(f"/proc/{pid}/comm").read_text().strip() == "dockerd", pid
    return pid


def docker_up() -> bool:
    """As setup.sh's docker_up: the engine answers on its socket."""
    try:
        return docker.from_env(timeout=5).ping()
    except (docker.errors.DockerException, OSError):
        return False


def start_dockerd() -> None:
    """As scripts/lib/setup.sh's ensure_docker: drop a stale pid file, `dockerd --ip 127.0.0.1`
    detached (it is the host's engine, not this benchmark's child), wait for the socket."""
    if docker_up():
        return
    if DOCKER_PID_FILE.exists():
        try:
            os.kill(int(DOCKER_PID_FILE.read_text().strip()), 0)
        except (ProcessLookupError, ValueError):
            DOCKER_PID_FILE.unlink(missing_ok=True)
    home = Path(os.environ.get("SERVERSINC_HOME") or _stack.ROOT / ".serversinc")
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "dockerd.log", "ab") as log:
        subprocess.Popen(["dockerd", "--ip", "127.0.0.1"], stdin=subprocess.DEVNULL, stdout=log,
                         stderr=subprocess.STDOUT, start_new_session=True)
    if not wait_until(docker_up, timeout=60, interval=0.5):
        raise RuntimeError(f"dockerd did not start again; see {home / 'dockerd.log'}")


def fault_dockerd_restarted(p: Platform, a: str, b: str, texts: dict) -> dict:
    started = time.monotonic()
    pid = dockerd_pid()
    with load(p, a, b) as clients:
        t0 = time.monotonic()
        pidfd = os.pidfd_open(pid)
        try:
            os.kill(pid, signal.SIGTERM)
            if not select.select([pidfd], [], [], 60)[0]:
                raise RuntimeError("dockerd did not stop within 60 s")
        finally:
            os.close(pidfd)
        stopped = time.monotonic()
        start_dockerd()
        engine_up = time.monotonic()
        serves_at = {}
        for app in (a, b):
            if wait_until(lambda app=app: p.serves(app, texts[app]), timeout=WAIT_SECONDS, interval=0.02):
                serves_at[app] = time.monotonic()
        more_samples(clients)
    p.docker = docker.from_env()
    per_app = {app: round(serves_at[app] - t0, 3) if app in serves_at else None for app in (a, b)}
    checks = {"every app serves again": len(serves_at) == 2,
              "one container serving each": all(one_serving(p, app, texts[app]) for app in (a, b))}
    recovery = max(v if v is not None else float("inf") for v in per_app.values())
    return result("2 dockerd restart", clients, (), recovery, checks,
                  time.monotonic() - started, serves_again_s=per_app,
                  served_after_load_s={app: served_again_s(c, t0) for app, c in clients.items()},
                  dockerd_stop_s=round(stopped - t0, 3), dockerd_start_s=round(engine_up - stopped, 3))


def fault_agent(p: Platform, a: str, b: str, texts: dict, how: str) -> dict:
    """Agent SIGTERM or SIGKILL (load goes on while none runs, then it starts again), or a
    restart followed by a redeploy of A through the restarted agent."""
    started = time.monotonic()
    master = running_master(p.stack.front_door_files)
    redeployed = None
    with load(p, a, b) as clients:
        t0 = time.monotonic()
        p.kill_agent(signal.SIGKILL if how == "SIGKILL" else signal.SIGTERM)
        if how != "restart":
            more_samples(clients)  # no agent runs
        p.start_agent()
        adopted = running_master(p.stack.front_door_files) == master
        if how == "restart":
            new = p.new_version(a)
            dep = p.deploy(a)
            redeployed = dep.state
            if redeployed == S.DEPLOYMENT_STATE_SUCCEEDED:
                texts[a] = new
        checks = {"same HAProxy adopted": adopted,
                  "one container serving each": all(one_serving(p, app, texts[app]) for app in (a, b)),
                  "load sees what serves": last_body_is(clients[a], texts[a]),
                  "redeploy SUCCEEDED": redeployed in (None, S.DEPLOYMENT_STATE_SUCCEEDED)}
        more_samples(clients)
    extra = {"adopted_same_haproxy": adopted}
    if redeployed is not None:
        extra.update(redeploy=S.DeploymentState.Name(redeployed), failure_reason=dep.failure_reason)
    return result(f"3 agent {how}", clients, (a, b),
                  max(served_again_s(c, t0) for c in clients.values()), checks, time.monotonic() - started, **extra)


def kill_haproxy(p: Platform) -> list[int]:
    master = running_master(p.stack.front_door_files)
    killed = [master] + worker_pids(master)
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    return killed


def fault_haproxy_killed(p: Platform, a: str, b: str, texts: dict) -> dict:
    started = time.monotonic()
    files = p.stack.front_door_files
    with load(p, a, b) as clients:
        t0 = time.monotonic()
        killed = kill_haproxy(p)
        restored = wait_until(lambda: all(p.serves(app, texts[app]) for app in (a, b)), timeout=WAIT_SECONDS,
                              interval=0.02)
        more_samples(clients)
        recovery = max(served_again_s(c, t0) for c in clients.values())
        # A redeploy whose switch meets a second kill (right before it: at the HEALTH event).
        new = p.new_version(a)
        name = p.create_deployment(a)
        second, t1 = [], None
        for event in p.watch(name):
            if not second and event.kind == S.EVENT_KIND_PHASE and event.phase == S.DEPLOYMENT_PHASE_HEALTH:
                t1 = time.monotonic()
                second = kill_haproxy(p)
        dep, events = p.finished(name)
        if dep.state == S.DEPLOYMENT_STATE_SUCCEEDED:
            texts[a] = new
        switched = any(e.kind == S.EVENT_KIND_PHASE and e.phase == S.DEPLOYMENT_PHASE_SWITCH for e in events)
        new_master = running_master(files)
        checks = {"restored": restored, "second kill met the redeploy": bool(second),
                  "redeploy switched and SUCCEEDED": switched and dep.state == S.DEPLOYMENT_STATE_SUCCEEDED,
                  "a new HAProxy": new_master not in (None, *killed, *second),
                  "one container serving each": all(one_serving(p, app, texts[app]) for app in (a, b)),
                  "load sees what serves": last_body_is(clients[a], texts[a])}
        more_samples(clients)
    return result("4 haproxy kill -9", clients, (), recovery, checks, time.monotonic() - started,
                  redeploy=S.DeploymentState.Name(dep.state), failure_reason=dep.failure_reason,
                  served_after_second_kill_s={app: served_again_s(c, t1) for app, c in clients.items()} if t1 else None)


def fault_agent_killed_in_first_gate(p: Platform, b: str, texts: dict) -> dict:
    started = time.monotonic()
    c, d = (f"{b.rsplit('-', 1)[0]}-{x}{uuid.uuid4().hex[:4]}" for x in "cd")
    repo = make_zd_repo(p.work / f"repo-{c}", "v1")
    commit_files(repo, {"Dockerfile": FAILING_DOCKERFILE, "fail": FAIL_CGI}, "health answers 500")
    p.create_app(c, repo, health_path="/cgi-bin/fail", health_timeout_seconds=10)
    with load(p, b) as clients:
        probe = KeepAliveClient(p.stack.front_door, p.host(c), max_seconds=LOAD_SECONDS)
        probe.start()  # what the front door answers for C, all along
        try:
            name = p.create_deployment(c)
            hit = False
            for event in p.watch(name):
                if event.kind == S.EVENT_KIND_PHASE and event.phase == S.DEPLOYMENT_PHASE_HEALTH:
                    hit = True
                    break
            t0 = time.monotonic()
            p.kill_agent(signal.SIGKILL)
            p.start_agent()
            dep, _ = p.finished(name)
            more_samples(clients)
        finally:
            probe.stop()
    status, _ = p.front(c)
    # The same first deploy failing its gate with no agent restart, for comparison (not a check).
    p.create_app(d, repo, health_path="/cgi-bin/fail", health_timeout_seconds=2)
    without_kill = p.deploy(d)
    reached_app = [s for s in probe.samples if "unhealthy on purpose" in s.body or s.status == 200]
    checks = {"killed in HEALTH": hit, "deployment FAILED": dep.state == S.DEPLOYMENT_STATE_FAILED,
              "no container serving it": p.serving(c) == [],
              # Nothing routes to it: 503 (its route, no healthy server) or, once the restarted agent
              # reconciled and dropped the route of an app with no gated container, 404.
              "front door routes nothing to it": status in (404, 503),
              "no request reached it": not reached_app,
              "app status FAILED": wait_until(lambda: p.get_app(c).status == app_pb2.APP_STATUS_FAILED, timeout=15),
              "bystander serving": one_serving(p, b, texts[b])}
    return result("5 agent SIGKILL in a first HEALTH (500)", clients, (b,), 0.0, checks,
                  time.monotonic() - started, deployment=S.DeploymentState.Name(dep.state),
                  failure_phase=S.DeploymentPhase.Name(dep.failure_phase), failure_reason=dep.failure_reason,
                  front_door_for_it=status, without_kill={
                      "deployment": S.DeploymentState.Name(without_kill.state), "front_door": p.front(d)[0]},
                  front_door_statuses=sorted({s.status for s in probe.samples}),
                  requests_that_reached_it=len(reached_app), after_kill_s=round(time.monotonic() - t0, 1))


def fault_api_killed(p: Platform, a: str, b: str, texts: dict, phase: str) -> dict:
    started = time.monotonic()
    settings = {f: type(getattr(app_pb2.App(), f))() for f in SETTING_FIELDS}
    p.update_app(a, **{**settings, **PHASE_SETTINGS[phase]})
    before = texts[a]
    new = p.new_version(a)
    if phase == "BUILD":
        commit_files(p.repos[a], {"Dockerfile": DOCKERFILE.format(healthcheck="") +
                                  'RUN ["/bin/busybox","sleep","2"]\n'}, "slow build")
    with load(p, a, b) as clients:
        name = p.create_deployment(a)
        target = S.DeploymentPhase.Value(f"DEPLOYMENT_PHASE_{phase}")
        hit = any(e.kind == S.EVENT_KIND_PHASE and e.phase == target for e in _until_phase(p.watch(name), target))
        t0 = time.monotonic()
        p.kill_api()
        p.start_api()
        dep, events = p.finished(name)
        resumed = any("resuming after a control-plane restart" in e.message for e in events)
        serving = p.serving(a)
        succeeded = dep.state == S.DEPLOYMENT_STATE_SUCCEEDED
        texts[a] = new if succeeded else before
        checks = {f"killed in {phase}": hit, "resumed after the restart": resumed,
                  "terminal": dep.state in TERMINAL, "exactly one container serving": len(serving) == 1,
                  "state matches what serves": len(serving) == 1 and succeeded == (serving[0].deployment_id == dep.id),
                  "front door serves it": p.serves(a, texts[a]) and last_body_is(clients[a], texts[a]),
                  "bystander serving": one_serving(p, b, texts[b])}
        more_samples(clients)
    return result(f"6 control plane SIGKILL in {phase}", clients, (a, b),
                  max(served_again_s(c, t0) for c in clients.values()), checks, time.monotonic() - started,
                  deployment=S.DeploymentState.Name(dep.state), failure_reason=dep.failure_reason, resumed=resumed,
                  serving=len(serving), after_kill_s=round(time.monotonic() - t0, 1))


def _until_phase(events, target):
    for event in events:
        yield event
        if event.kind == S.EVENT_KIND_PHASE and event.phase == target:
            return


# ---- the run ------------------------------------------------------------------------------------------
def run(args) -> list[dict]:
    os.environ["TUGBOAT_ROUTER"] = "haproxy"
    os.environ["SERVERSINC_HEALTH_POLL_SECONDS"] = "1"  # the app status follows a crash within a second
    prefix = f"fb{uuid.uuid4().hex[:6]}"
    a, b = f"{prefix}-a", f"{prefix}-b"
    work = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    lines: list[dict] = []
    try:
        with _stack.platform_stack() as stack:
            p = Platform(stack, work)
            try:
                texts = {}
                for app in (a, b):
                    p.create_app(app, make_zd_repo(work / f"repo-{app}", "v1"))
                    dep = p.deploy(app)
                    assert dep.state == S.DEPLOYMENT_STATE_SUCCEEDED, dep.failure_reason
                    texts[app] = body("v1")
                print(f"apps {a} (faulted) and {b} (bystander) serve at {stack.front_door}", flush=True)
                for _ in range(args.repeat):
                    if 1 in args.only:
                        lines.append(fault_app_process_killed(p, a, b, texts[a]))
                    if 2 in args.only and args.no_dockerd:
                        print(json.dumps({"fault": "2 dockerd restart", "skipped": True}), flush=True)
                    elif 2 in args.only:
                        try:
                            lines.append(fault_dockerd_restarted(p, a, b, texts))
                        finally:
                            start_dockerd()
                    if 3 in args.only:
                        for how in ("SIGTERM", "SIGKILL", "restart"):
                            lines.append(fault_agent(p, a, b, texts, how))
                    if 4 in args.only:
                        lines.append(fault_haproxy_killed(p, a, b, texts))
                    if 5 in args.only:
                        lines.append(fault_agent_killed_in_first_gate(p, b, texts))
                    if 6 in args.only:
                        for phase in PHASE_SETTINGS:
                            lines.append(fault_api_killed(p, a, b, texts, phase))
            finally:
                p.cleanup()
                if not lines or not all(line["held"] for line in lines):
                    kept = Path(tempfile.gettempdir()) / f"bench-faults-logs-{prefix}"
                    shutil.copytree(stack.home / "logs", kept, dirs_exist_ok=True)
                    print(f"logs of the stack kept in {kept} (a case did not hold)", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-dockerd", action="store_true",
                        help="skip fault 2 (restarting dockerd) when others share the engine")
    parser.add_argument("--only", type=lambda v: {int(n) for n in v.split(",")}, default={1, 2, 3, 4, 5, 6},
                        help="comma-separated fault numbers to run (default: all)")
    parser.add_argument("--repeat", type=int, default=1, help="run the chosen faults this many times (one stack)")
    args = parser.parse_args()
    started = time.monotonic()
    lines = run(args)
    recoveries = [line["recovery_s"] for line in lines]
    print(json.dumps({
        "faults": len(lines), "held": sum(1 for line in lines if line["held"]),
        "failed_requests": sum(line["failed_required"] for line in lines),
        "max_recovery_s": max(recoveries) if recoveries else None,
        "dockerd_restart": "skipped" if args.no_dockerd else "run",
        "seconds": round(time.monotonic() - started, 1),
        "per_fault": [{k: line[k] for k in ("fault", "failed", "failed_required", "recovery_s", "truthful", "held")}
                      for line in lines],
    }))


if __name__ == "__main__":
    main()
