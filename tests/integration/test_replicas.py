"""Two real control-plane replicas (`serversinc-api` processes) on one real PostgreSQL database,
one real agent, real Docker: the "Must show" of the replicas issue, end to end.

- 50 apps x 2 deployments created at once over both replicas' APIs: each succeeds exactly once,
  one app's deployments run one after the other in order, event numbers 1..n with no gap.
- A replica SIGKILLed while it runs deployments in BUILD, HEALTH and STOP_OLD: the other takes
  each over after the lease and finishes it truthfully; one container serves each app; no
  request to them fails under keep-alive load.
- A cancel sent to one replica stops the build the other runs (no image, no container).
- Every notification is delivered once with two senders running.
- A watcher on one replica follows a deployment run on the other live (latency printed; the
  benchmark scripts/bench/replicas.py measures it).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timezone

import pytest
from serversinc.v1 import deployment_pb2
from sqlalchemy import select
from tugboat.v1 import tugboat_pb2

from services.db.models import Job, Notification
from services.db.session import Database
from tests.integration.test_observability import Receiver
from tests.support.agent_calls import build, front_get, wait_until
from tests.support.replicas import TERMINAL, Replica
from tests.support.sample_app import DOCKERFILE, commit_files, make_sample_repo, repo_url, slow_step
from tests.support.zd_app import DOCKERFILE as ZD_DOCKERFILE
from tests.support.zd_app import body, commit_zd_version, make_zd_repo
from tests.support.zd_load import KeepAliveClient

S = deployment_pb2
SUCCEEDED = S.DEPLOYMENT_STATE_SUCCEEDED
# Short stops and drains. The health interval is also the front door's check interval between
# deploys: 50 backends checked every 20 ms keep HAProxy so busy that its reloads (one per new
# app) time out on a loaded machine; every 250 ms they do not, and a gate still passes at once.
FAST = {"health_interval_ms": 250, "stop_grace_seconds": 2, "drain_seconds": 1}


@pytest.fixture
def agent(agent_home, docker_client):
    """The conftest agent, building several apps at once: these tests hold deployments of
    different apps in their phases side by side (a slow build beside a health gate), which one
    build at a time on the server (the default) would queue behind each other."""
    from tests.conftest import agent_config, start_agent

    with start_agent(agent_config(agent_home, build_concurrency=4), docker_client) as running:
        yield running


@pytest.fixture
def home(tmp_path):
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def replicas(home, agent, postgres_url):
    """Start replicas on the test's database (the first one alone first: it bootstraps the schema
    and the token); all of them are stopped after the test."""
    started: list[Replica] = []

    def start(name: str, **env) -> Replica:
        started.append(Replica(name, home, agent, postgres_url, **env))
        return started[-1]
    yield start
    for replica in started:
        replica.stop()


def own_sample_repo(tmp_path):
    """The sample app with a version of this test's own: its image layers are nobody else's, so
    another test removing its images (the same content would share them) never takes them away
    in the middle of this test's build ("unable to find image sha256:...")."""
    return make_sample_repo(tmp_path / "repo", f"v1-{uuid.uuid4().hex[:8]}")


def assert_truthful_events(events: list, name: str) -> None:
    """Seqs 1..n with no gap or duplicate, one terminal STATE event and it is the last."""
    assert [e.seq for e in events] == list(range(1, len(events) + 1)), f"{name}: seqs {[e.seq for e in events]}"
    terminal = [e for e in events if e.kind == S.EVENT_KIND_STATE and e.state in TERMINAL]
    assert len(terminal) == 1 and terminal[0] is events[-1], f"{name}: terminal events {terminal}"
    started = [e for e in events if e.kind == S.EVENT_KIND_STATE and e.state == S.DEPLOYMENT_STATE_RUNNING]
    assert len(started) == 1, f"{name}: started {len(started)} times"


def assert_timings_in_order(dep) -> None:
    """Every phase ended, each after it began and no later than the next began."""
    timings = list(dep.phase_timings)
    assert timings, dep
    for t in timings:
        assert t.HasField("end_time") and t.end_time.ToDatetime() >= t.start_time.ToDatetime(), (dep.name, t)
    for before, after in zip(timings, timings[1:]):
        assert before.end_time.ToDatetime() <= after.start_time.ToDatetime(), (dep.name, before, after)


def jobs_by_deployment(database_url: str) -> dict[int, tuple[str, int]]:
    """deployment id -> (its job's status, how many attempts claimed it), read from the database."""
    db = Database(database_url)
    try:
        with db.read() as s:
            rows = s.scalars(select(Job)).all()
            return {j.deployment_id: (j.status, j.attempts) for j in rows}
    finally:
        db.dispose()


def running_containers(agent, app: str) -> list:
    return [c for c in agent.stub.ListContainers(tugboat_pb2.ListContainersRequest(app=app), timeout=10).containers
            if c.state == "running"]


# Measured here: 270-400 s on this 2-core machine while other suites ran beside it (load 20-80),
# bound by the agent starting one container at a time (see the report in the commit log).
@pytest.mark.timeout(900)
def test_fifty_apps_times_two_deployments_over_two_replicas_each_succeed_once_in_order(
        tmp_path, agent, replicas, make_app_name, postgres_url, docker_client):
    started = time.monotonic()
    # The health monitors (one per replica) list every container of the agent every 5 s, each
    # listing a Docker inspect per container: with 100 containers that load slows the very starts
    # measured here, so they poll rarely in this test.
    quiet = {"SERVERSINC_HEALTH_POLL_SECONDS": 300}
    a, b = replicas("a", **quiet), replicas("b", **quiet)
    both = [a, b]
    repo = own_sample_repo(tmp_path)
    url, sha = repo_url(repo), repo.head.commit.hexsha
    names = [make_app_name() for _ in range(50)]
    # One repo and one build: its image tagged `<app>:<sha>` for every app is the image the agent
    # would build for that commit, so each deployment's BUILD finds it and skips the build (the
    # deploys, not 50 identical docker builds, are what this test is about).
    seed = make_app_name()
    assert build(agent.stub, seed, repo, sha)[-1].result, "the sample image did not build"
    image = docker_client.images.get(f"{seed}:{sha}")
    for app in names:
        image.tag(app, sha)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: both[i % 2].create_app(names[i], url, port=8080, **FAST), range(50)))

    go = threading.Event()

    def create_both(i: int) -> tuple[str, str]:
        go.wait()
        first = both[i % 2].deploy(names[i]).name
        second = both[(i + 1) % 2].deploy(names[i]).name
        return first, second

    with ThreadPoolExecutor(50) as pool:
        pending = [pool.submit(create_both, i) for i in range(50)]
        go.set()
        pairs = [p.result() for p in pending]
    created = time.monotonic()

    def watched(i_name: tuple[int, str]):
        i, name = i_name
        return both[i % 2].finished(name, timeout=600)  # followed on either replica, wherever it runs

    flat = [(i, name) for i, pair in enumerate(pairs) for name in pair]
    with ThreadPoolExecutor(len(flat)) as pool:
        results = dict(zip((name for _, name in flat), pool.map(watched, flat)))
    ended = time.monotonic()

    for name, (dep, events) in results.items():
        assert dep.state == SUCCEEDED, (name, dep.failure_reason, a.log_tail(), b.log_tail())
        assert_truthful_events(events, name)
        assert_timings_in_order(dep)
    jobs = jobs_by_deployment(postgres_url)
    assert len(jobs) == 100
    assert all(job == ("done", 1) for job in jobs.values()), {d: j for d, j in jobs.items() if j != ("done", 1)}
    for app, (first, second) in zip(names, pairs):
        one, two = results[first][0], results[second][0]
        assert one.id < two.id
        assert two.start_time.ToDatetime() >= one.end_time.ToDatetime(), (app, one.end_time, two.start_time)
        assert two.phase_timings[0].start_time.ToDatetime() >= one.phase_timings[-1].end_time.ToDatetime()
        serving = running_containers(agent, app)
        assert [c.deployment_id for c in serving if c.serving] == [two.id], serving
    print(f"\n50 apps x 2 deployments on 2 replicas x 4 workers: created in {created - started:.1f}s after start, "
          f"all finished {ended - created:.1f}s after creation, test {time.monotonic() - started:.1f}s so far")


# The phase a replica is SIGKILLed in -> the app settings that hold the deployment there. The
# three redeploys are started one after the other, each once the one before is held in its phase,
# so each window only has to outlast the starts that follow it (however slow a loaded machine is).
KILL_CASES = {
    "HEALTH": {"health_interval_ms": 300, "healthy_threshold": 100, "health_timeout_seconds": 120},  # ~30 s
    "BUILD": {},  # a 30 s build step (below)
    # After the switch: slow requests in flight on the old container keep it draining (each
    # answers after SLOW_SECONDS, well inside the drain period), then it ignores its stop signal
    # until the grace period ends.
    "STOP_OLD": {"healthy_threshold": 10, "health_interval_ms": 200, "drain_seconds": 60,
                 "stop_signal": "SIGWINCH", "stop_grace_seconds": 5, "env": {"SLOW_SECONDS": "15"}},
}
LEASE_SECONDS = 3


def test_a_replica_killed_in_build_health_and_stop_old_is_taken_over_with_no_failed_request(
        tmp_path, agent, replicas, make_app_name):
    a = replicas("a", SERVERSINC_JOB_LEASE_SECONDS=LEASE_SECONDS)
    apps = {phase: make_app_name() for phase in KILL_CASES}
    own = uuid.uuid4().hex[:8]  # versions of this test's own: no image layer shared with another test
    v1, v2 = f"v1-{own}", f"v2-{own}"
    repos = {phase: make_zd_repo(tmp_path / f"repo-{phase}", v1) for phase in KILL_CASES}
    loads = {phase: KeepAliveClient(agent.front_door, f"{app}.localhost", max_seconds=240)
             for phase, app in apps.items()}
    # In flight on the old container of the STOP_OLD app when traffic switches.
    slow = [KeepAliveClient(agent.front_door, f"{apps['STOP_OLD']}.localhost", "/cgi-bin/slow", pause=0,
                            max_requests=1, timeout=60) for _ in range(3)]
    b = None
    try:
        for phase, app in apps.items():
            a.create_app(app, repo_url(repos[phase]), port=8080, **KILL_CASES[phase])
        firsts = [a.deploy(app).name for app in apps.values()]
        for name in firsts:
            dep, _ = a.finished(name)
            assert dep.state == SUCCEEDED, dep.failure_reason
        for phase, load in loads.items():
            load.start()
            assert wait_until(lambda: any(s.body == body(v1) for s in load.samples), timeout=10), phase

        for phase, repo in repos.items():
            commit_zd_version(repo, v2)
            if phase == "BUILD":
                commit_files(repo, {"Dockerfile": ZD_DOCKERFILE.format(healthcheck="") + slow_step(30)},
                             "v2, slow build")
        seconds: dict[str, str] = {}

        def held(phase: str, until) -> None:
            """Redeploys the phase's app on `a` and returns once `until(event)` holds for one of its events."""
            seconds[phase] = a.deploy(apps[phase]).name
            for event in a.follow(seconds[phase]):
                if until(event):
                    return
            pytest.fail(f"{seconds[phase]} ended before {phase}: {a.get(seconds[phase])}")

        def in_phase(name: str):
            phase = S.DeploymentPhase.Value(f"DEPLOYMENT_PHASE_{name}")
            return lambda e: e.kind == S.EVENT_KIND_PHASE and e.phase == phase

        held("HEALTH", in_phase("HEALTH"))
        held("BUILD", lambda e: e.phase == S.DEPLOYMENT_PHASE_BUILD and "sleep" in e.message)
        started_slow = []

        def stop_old_or_start(e) -> bool:
            if e.kind == S.EVENT_KIND_PHASE and e.phase == S.DEPLOYMENT_PHASE_START and not started_slow:
                for client in slow:  # the old container still serves: the gate takes ~2 s
                    client.start()
                started_slow.append(True)
            return in_phase("STOP_OLD")(e)
        held("STOP_OLD", stop_old_or_start)
        # The second replica was up before the kill (it also follows a's deployments), but it only
        # started now, so every redeploy above was claimed by a.
        b = replicas("b", SERVERSINC_JOB_LEASE_SECONDS=LEASE_SECONDS)
        now = {phase: b.get(name) for phase, name in seconds.items()}
        assert {p: S.DeploymentPhase.Name(d.phase) for p, d in now.items()} == \
            {p: f"DEPLOYMENT_PHASE_{p}" for p in KILL_CASES}, now
        a.kill()

        for phase, name in seconds.items():
            done, events = b.finished(name, timeout=240)
            messages = [e.message for e in events]
            assert done.state == SUCCEEDED, (phase, done.failure_reason, messages, b.log_tail())
            assert_truthful_events(events, name)
            assert_timings_in_order(done)
            assert any("resuming (attempt 2)" in m for m in messages), messages
            print(f"\n{phase} case, taken over by b: " + ", ".join(
                f"{S.DeploymentPhase.Name(t.phase)[17:]} {(t.end_time.ToDatetime() - t.start_time.ToDatetime()).total_seconds():.1f}s"
                for t in done.phase_timings))
            app = apps[phase]
            assert wait_until(lambda: len(running_containers(agent, app)) == 1, timeout=90), \
                running_containers(agent, app)
            serving = [c for c in running_containers(agent, app) if c.serving]
            assert [c.deployment_id for c in serving] == [done.id], serving
            assert front_get(agent.front_door, f"{app}.localhost") == (200, body(v2))
            load = loads[phase]
            assert wait_until(lambda: load.samples and load.samples[-1].body == body(v2), timeout=10), phase
    finally:
        samples = {phase: load.stop() if load.is_alive() else list(load.samples) for phase, load in loads.items()}
        slow_samples = [s for client in slow for s in (client.stop() if client.is_alive() else client.samples)]
    for phase, got in samples.items():
        failures = [s for s in got if s.status != 200]
        assert got and failures == [], (phase, len(got), failures[:5])
        print(f"\n{phase}: {len(got)} requests under keep-alive load, 0 failed")
    assert [(s.status, s.body.strip()) for s in slow_samples] == [(200, "slow done")] * len(slow), slow_samples


def test_a_cancel_sent_to_one_replica_stops_the_build_the_other_runs(tmp_path, agent, replicas, app_name,
                                                                      docker_client):
    a = replicas("a")
    b = replicas("b", SERVERSINC_WORKERS=0)  # an API replica only: the build certainly runs on a
    repo = own_sample_repo(tmp_path)
    sha = commit_files(repo, {"Dockerfile": DOCKERFILE + slow_step(117)}, "slow build")
    a.create_app(app_name, repo_url(repo), port=8080)
    name = a.deploy(app_name).name
    for event in a.follow(name):
        if event.kind == S.EVENT_KIND_LOG and "sleep" in event.message and event.phase == S.DEPLOYMENT_PHASE_BUILD:
            break  # the slow step runs
    else:
        pytest.fail(f"{name} ended before its slow build step")
    sent = time.monotonic()
    b.cancel(name)
    ended = None
    for event in b.follow(name, timeout=60):  # far less than the build's 117 s
        if event.kind == S.EVENT_KIND_STATE and event.state in TERMINAL:
            ended = time.monotonic()
    dep = b.get(name)
    assert dep.state == S.DEPLOYMENT_STATE_CANCELLED, (dep.state, dep.failure_reason, a.log_tail())
    assert dep.failure_phase == S.DEPLOYMENT_PHASE_BUILD, dep
    assert not docker_client.images.list(name=f"{app_name}:{sha}"), "the build ran on to an image"
    assert docker_client.containers.list(all=True, filters={"label": f"io.serversinc.app={app_name}"}) == []

    def slow_step_running() -> bool:  # the classic builder runs a RUN step in a container of its own
        return any(c.attrs.get("Command") == "/bin/busybox sleep 117" for c in docker_client.containers.list(sparse=True))
    assert wait_until(lambda: not slow_step_running(), timeout=10), "the build's step still runs"
    print(f"\ncancel sent to replica b -> build on replica a stopped and recorded in {ended - sent:.2f}s")


def test_each_notification_is_delivered_once_with_two_replicas_sending(tmp_path, agent, replicas, make_app_name,
                                                                         postgres_url):
    receiver = Receiver()
    try:
        both = [replicas("a"), replicas("b")]
        url = repo_url(own_sample_repo(tmp_path))
        names = [make_app_name() for _ in range(6)]
        for i, app in enumerate(names):
            both[i % 2].create_app(app, url, port=8080, notify_urls=[receiver.url], **FAST)
        # Two deployments per app, each created on the other replica; one notification each.
        deployments = [both[(i + k) % 2].deploy(app).name for k in range(2) for i, app in enumerate(names)]
        for i, name in enumerate(deployments):
            dep, _ = both[i % 2].finished(name)
            assert dep.state == SUCCEEDED, dep.failure_reason
        receiver.wait(len(deployments))
        db = Database(postgres_url)
        try:
            def all_sent() -> bool:
                with db.read() as s:
                    return all(n.status == "delivered" for n in s.scalars(select(Notification)))
            assert wait_until(all_sent, timeout=30)
            for replica in both:
                replica.stop()  # their senders are done: any second post would have arrived by now
            with db.read() as s:
                rows = {str(n.id): n.status for n in s.scalars(select(Notification))}
        finally:
            db.dispose()
        # Every row (deploy outcomes, and any app.down/recovered the health monitors announced)
        # reached the receiver exactly once.
        deliveries = Counter(headers["X-Serversinc-Delivery"] for headers, _ in receiver.received)
        assert set(rows.values()) == {"delivered"} and sorted(deliveries) == sorted(rows), (deliveries, rows)
        assert set(deliveries.values()) == {1}, deliveries
        outcomes = Counter(json.loads(b)["deployment"]["name"] for _, b in receiver.received
                           if json.loads(b)["event"].startswith("deployment."))
        assert sorted(outcomes) == sorted(deployments) and set(outcomes.values()) == {1}, outcomes
        print(f"\n{len(deployments)} deployments over 2 replicas: {len(deliveries)} notifications, each delivered once")
    finally:
        receiver.close()


def test_a_watcher_on_one_replica_follows_a_deployment_run_on_the_other_live(tmp_path, agent, replicas, app_name):
    a = replicas("a")
    b = replicas("b", SERVERSINC_WORKERS=0)  # the deployment certainly runs on a; b only serves watchers
    repo = own_sample_repo(tmp_path)
    ticks = ('RUN ["/bin/busybox","sh","-c","echo {nonce}; i=0; while [ $i -lt 40 ]; do echo TICK $i; '
             '/bin/busybox usleep 50000; i=$((i+1)); done"]\n').format(nonce=time.time_ns())
    commit_files(repo, {"Dockerfile": DOCKERFILE + ticks}, "a build that ticks")
    a.create_app(app_name, repo_url(repo), port=8080, **FAST)
    name = a.deploy(app_name).name
    seen: dict[str, list] = {}

    def watch(replica: Replica) -> None:
        got = []
        for event in replica.follow(name):
            got.append((event, time.time()))
        seen[replica.name] = got
    watchers = [threading.Thread(target=watch, args=(r,)) for r in (a, b)]
    for t in watchers:
        t.start()
    for t in watchers:
        t.join(180)
    assert a.get(name).state == SUCCEEDED
    assert [e.seq for e, _ in seen["b"]] == [e.seq for e, _ in seen["a"]]
    assert_truthful_events([e for e, _ in seen["b"]], name)
    for replica, got in seen.items():
        # Only what was stored while the watcher already followed: lines of the live build.
        live = sorted((received - e.time.ToDatetime().replace(tzinfo=timezone.utc).timestamp()) * 1000
                      for e, received in got if "TICK" in e.message)
        assert live, got
        p95 = live[min(len(live) - 1, round(0.95 * (len(live) - 1)))]
        print(f"\nwatcher on {replica} ({'same' if replica == 'a' else 'other'} replica): {len(live)} build lines, "
              f"stored -> received p50 {live[len(live) // 2]:.1f} ms, p95 {p95:.1f} ms")
