"""The releaser carries the planner's steps out: a fake engine and the direct router, no Docker."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from itertools import count

import pytest

from agent.docker_engine import ContainerRecord, NotOnEngine
from agent.health import HealthPolicy
from agent.operations import CancelToken
from agent.releaser import DeploySpec, Failure, Releaser, front_door_check
from agent.router import DirectRouter
from common.phases import Phase

SHA = "a" * 40
_EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)


class FakeEngine:
    """Containers in a dict; new ones are healthy by Docker HEALTHCHECK unless told otherwise."""

    def __init__(self, *, oom: bool = False) -> None:
        self.containers: dict[str, ContainerRecord] = {}
        self.calls: list[tuple[str, str]] = []
        self.specs = []
        self.oom = oom
        self._ids = count(1)

    def add(self, *, deployment_id: int, restart_policy: str, state: str = "running") -> ContainerRecord:
        n = next(self._ids)
        record = ContainerRecord(
            id=f"c{n}", name=f"web-{deployment_id}-{n}", app="web", deployment_id=deployment_id,
            commit_sha=SHA, image="web:x", state=state, exit_code=137 if self.oom else 0,
            restart_count=0, host_port=40000 + n, created=_EPOCH + timedelta(seconds=n),
            oom_killed=self.oom, health_status="healthy", restart_policy=restart_policy)
        self.containers[record.id] = record
        return record

    def run(self, spec):
        self.specs.append(spec)
        record = self.add(deployment_id=int(spec.labels["io.serversinc.deployment"]),
                          restart_policy=spec.restart_policy,
                          state="exited" if self.oom else "running")
        self.calls.append(("run", record.id))
        return record

    def inspect(self, container_id):
        if container_id not in self.containers:
            raise NotOnEngine(container_id)
        return self.containers[container_id]

    def list(self, app=None):
        return sorted((r for r in self.containers.values() if app in (None, r.app)),
                      key=lambda r: r.created, reverse=True)

    def set_restart_policy(self, container_id, policy):
        self.containers[container_id].restart_policy = policy

    def stop(self, container_id, timeout):
        self.calls.append(("stop", container_id))
        self.containers[container_id].state = "exited"

    def remove(self, container_id, force=True):
        self.calls.append(("remove", container_id))
        self.containers.pop(container_id, None)

    def logs_tail(self, container_id, lines):
        return ["allocating a lot"]


def _spec(deployment_id: int, **fields) -> DeploySpec:
    return DeploySpec(app="web", deployment_id=deployment_id, image="web:x", commit_sha=SHA,
                      port=8080, health=HealthPolicy(use_docker_healthcheck=True), **fields)


def _deploy(releaser, deployment_id, **fields):
    return list(releaser.deploy(_spec(deployment_id, **fields), CancelToken()))


def test_deploy_then_redeploy_switches_then_retires_the_old_container(tmp_path):
    engine, router = FakeEngine(), DirectRouter(tmp_path / "routes.json")
    releaser = Releaser(engine, router)
    first = _deploy(releaser, 1)
    assert first[-1].phase is Phase.DONE and first[-1].failure is None
    assert router.serving("web") == ("c1",)
    assert engine.specs[0].restart_policy == "no"  # none until healthy
    assert engine.containers["c1"].restart_policy == "unless-stopped"

    second = _deploy(releaser, 2)
    assert second[-1].phase is Phase.DONE and second[-1].url == "http://127.0.0.1:40002"
    assert router.serving("web") == ("c2",) and list(engine.containers) == ["c2"]
    assert engine.calls[-3:] == [("run", "c2"), ("stop", "c1"), ("remove", "c1")]
    phases = [e.phase for e in second]
    assert phases.index(Phase.SWITCH) < phases.index(Phase.STOP_OLD)


def test_oom_killed_new_container_is_removed_and_never_routed(tmp_path):
    engine, router = FakeEngine(oom=True), DirectRouter(tmp_path / "routes.json")
    last = _deploy(Releaser(engine, router), 7, stop_signal="SIGQUIT")[-1]
    assert last.failure is Failure.START and last.phase is Phase.START
    assert "OOM-killed" in last.error and "allocating a lot" in last.error
    assert engine.calls == [("run", "c1"), ("remove", "c1")] and router.serving("web") == ()
    assert engine.specs[0].stop_signal == "SIGQUIT"


def test_cancel_before_the_switch_removes_only_the_new_container(tmp_path):
    engine, router = FakeEngine(), DirectRouter(tmp_path / "routes.json")
    releaser = Releaser(engine, router)
    _deploy(releaser, 1)
    token = CancelToken()
    events = []
    for event in releaser.deploy(_spec(2), token):
        events.append(event)
        if event.phase is Phase.HEALTH:
            token.cancel()
    assert events[-1].failure is Failure.CANCELLED and events[-1].phase is Phase.SWITCH
    assert list(engine.containers) == ["c1"] and router.serving("web") == ("c1",)


@pytest.mark.parametrize("gone_at", [Phase.SWITCH, Phase.STOP_OLD])
def test_a_stream_that_ends_after_the_switch_still_retires_the_old_container(tmp_path, gone_at):
    # The control plane killed mid-deploy closes the stream: past the switch the release still
    # completes, so no old container is left running beside the new one.
    engine, router = FakeEngine(), DirectRouter(tmp_path / "routes.json")
    releaser = Releaser(engine, router)
    _deploy(releaser, 1)
    stream = releaser.deploy(_spec(2), CancelToken())
    for event in stream:
        if event.phase is gone_at:
            stream.close()
            break
    assert releaser.wait_retired("web", timeout=10)  # the old release retires in the background
    assert router.serving("web") == ("c2",) and list(engine.containers) == ["c2"]
    assert ("stop", "c1") in engine.calls and ("remove", "c1") in engine.calls


def test_a_stream_that_ends_before_the_switch_removes_only_the_new_container(tmp_path):
    engine, router = FakeEngine(), DirectRouter(tmp_path / "routes.json")
    releaser = Releaser(engine, router)
    _deploy(releaser, 1)
    stream = releaser.deploy(_spec(2), CancelToken())
    for event in stream:
        if event.phase is Phase.HEALTH:
            stream.close()
            break
    assert router.serving("web") == ("c1",) and list(engine.containers) == ["c1"]


def test_a_retried_deployment_drops_its_earlier_attempt(tmp_path):
    engine, router = FakeEngine(), DirectRouter(tmp_path / "routes.json")
    releaser = Releaser(engine, router)
    _deploy(releaser, 1)
    engine.add(deployment_id=2, restart_policy="no")  # c2: the attempt before a restart
    events = _deploy(releaser, 2)
    assert events[-1].phase is Phase.DONE
    assert ("remove", "c2") in engine.calls and list(engine.containers) == ["c3"]


def test_reconcile_keeps_the_routed_container_and_drops_an_ungated_leftover(tmp_path):
    engine, router = FakeEngine(), DirectRouter(tmp_path / "routes.json")
    releaser = Releaser(engine, router)
    _deploy(releaser, 1)
    engine.add(deployment_id=2, restart_policy="no")  # started, never healthy
    engine.containers["c1"].host_port = 41234  # Docker restarted it: the port moved
    releaser.reconcile()
    assert list(engine.containers) == ["c1"]
    assert router.serving("web") == ("c1",) and router.url("web") == "http://127.0.0.1:41234"


def test_reconcile_keeps_every_routed_replica(tmp_path):
    """A release of three replicas is three after an agent restart, not one."""
    engine, router = FakeEngine(), DirectRouter(tmp_path / "routes.json")
    releaser = Releaser(engine, router)
    _deploy(releaser, 1, replicas=3)
    routed = router.serving("web")
    assert len(routed) == 3
    releaser.reconcile()
    assert sorted(router.serving("web")) == sorted(routed) and sorted(engine.containers) == sorted(routed)


def test_reconcile_forgets_the_route_of_an_app_with_no_container(tmp_path):
    engine, router = FakeEngine(), DirectRouter(tmp_path / "routes.json")
    releaser = Releaser(engine, router)
    _deploy(releaser, 1)
    engine.containers.clear()
    releaser.reconcile()
    assert router.apps() == []


def test_reconcile_after_a_kill_during_the_first_gate_routes_nothing(tmp_path):
    """The agent died while the only container of a first deploy was being gated: after the
    restart that container (restart policy still "no") is removed and the app has no route."""
    engine, router = FakeEngine(), DirectRouter(tmp_path / "routes.json")
    router.ensure_app("web")
    engine.add(deployment_id=1, restart_policy="no")
    Releaser(engine, router).reconcile()
    assert engine.containers == {} and router.apps() == [] and router.serving("web") == ()


class RecordingRouter(DirectRouter):
    def __init__(self, path) -> None:
        super().__init__(path)
        self.checks = []

    def switch(self, app, targets, check=None) -> str:
        self.checks.append(check)
        return super().switch(app, targets, check)


def test_the_route_carries_the_apps_health_check(tmp_path):
    engine, router = FakeEngine(), RecordingRouter(tmp_path / "routes.json")
    health = HealthPolicy(status_min=200, status_max=204, interval_ms=250, probe_timeout_ms=700,
                          healthy_threshold=2, use_docker_healthcheck=True)
    spec = replace(_spec(1, health_path="/up"), health=health)
    events = list(Releaser(engine, router).deploy(spec, CancelToken()))
    assert events[-1].phase is Phase.DONE
    (check,) = router.checks
    # Docker-HEALTHCHECK mode: the front door cannot run Docker's check, the app must answer HTTP.
    assert (check.path, check.status_min, check.status_max, check.interval_ms, check.timeout_ms,
            check.rise) == ("/up", 100, 599, 250, 700, 2)
    http = front_door_check(replace(spec, health=replace(health, use_docker_healthcheck=False)))
    assert (http.status_min, http.status_max) == (200, 204)
