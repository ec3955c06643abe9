"""The deploy pipeline over a fake agent: success, failures, cancels and resuming after a restart."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from services.agents.port import AgentCancelled, AgentSlotWaitTimeout, BuildUpdate, CancelToken, ContainerView, DeployUpdate
from services.config import Settings
from services.core.errors import FailedPrecondition
from services.core.states import EventKind, Phase
from services.db.models import App, Deployment
from services.deployments.events import EventLog
from services.deployments.pipeline import DeployPipeline
from services.deployments.recorder import Recorder
from services.deployments.service import DeploymentService
from services.jobs.cancels import CancelRegistry
from services.jobs.queue import JobQueue
from services.security.secretbox import SecretBox
from tests.unit.services.fakes import FakeClock

SHA = "a" * 40
URL = "http://web.localhost:8000"


class FakeGit:
    def __init__(self):
        self.resolved = []

    def resolve(self, url, branch, *, timeout):
        self.resolved.append((url, branch))
        return SHA


class FakeAgent:
    """Plays a scripted build and deploy; `during` hooks run when the deploy reaches a step."""

    def __init__(self, monotonic: FakeClock):
        self.monotonic = monotonic
        self.build_updates = [
            BuildUpdate(line="Step 1/2 : FROM scratch", step_current=1, step_total=2),
            BuildUpdate(line="Step 2/2 : COPY . /", step_current=2, step_total=2),
            BuildUpdate(image=f"web:{SHA[:12]}", image_id="sha256:1", seconds=7.5, done=True),
        ]
        self.deploy_steps = ["START", "HEALTH", "SWITCH", "STOP_OLD", "DONE"]
        self.failure: DeployUpdate | None = None
        self.during: dict[str, callable] = {}
        self.containers: list[ContainerView] = []
        self.builds, self.deploys, self.slot_waits = [], [], []

    def build(self, spec, *, timeout, cancel, slot_wait):
        self.builds.append(spec)
        self.slot_waits.append(slot_wait)
        for update in self.build_updates:
            if isinstance(update, Exception):
                raise update
            yield update

    def deploy(self, spec, *, timeout, cancel):
        self.deploys.append(spec)
        for step in self.deploy_steps:
            if step == "DONE":
                self.monotonic.advance(4)
            yield DeployUpdate(phase=Phase(step), message=step.lower(), container_id="c-new", url=URL if step == "DONE" else "")
            if step in self.during:
                self.during[step]()
            if cancel.cancelled:
                raise AgentCancelled("the deploy call was cancelled")
            if self.failure is not None and self.failure.phase == step:
                yield self.failure
                return

    def list_containers(self, app):
        return list(self.containers)

    def serving(self, deployment_id: int) -> ContainerView:
        return ContainerView(id="c-new", name="web-1", app="web", deployment_id=deployment_id, commit_sha=SHA,
                             image=f"web:{SHA[:12]}", state="running", direct_url="http://127.0.0.1:1",
                             created=None, serving=True, url=URL)


class FakeAgents:
    def __init__(self, agent):
        self.agent = agent

    def for_server(self, name):
        return self.agent


class World:
    """A control plane's deploy path with fakes at its edges: database, queue, service, pipeline."""

    def __init__(self, db, clock, tmp_path):
        self.db = db
        self.monotonic = FakeClock(seconds=True)
        self.events = EventLog(db)
        self.queue = JobQueue(db, lease_seconds=30, clock=clock)
        self.cancels = CancelRegistry()
        self.service = DeploymentService(db, self.events, self.queue, self.cancels)
        self.agent = FakeAgent(self.monotonic)
        self.git = FakeGit()
        settings = Settings(home=tmp_path, database_url=db.url)
        self.pipeline = DeployPipeline(
            settings, lambda claim: Recorder(db, self.events, self.queue, claim, clock=clock), self.git,
            FakeAgents(self.agent), SecretBox(Fernet.generate_key()), clock=self.monotonic)

    def run_next(self, worker: str = "w1") -> int:
        """Claims the next job and runs it as a worker thread would; returns the deployment id."""
        claim = self.queue.claim(worker)
        token = CancelToken()
        self.cancels.register(claim.deployment_id, token.cancel)
        try:
            self.pipeline.run(claim, token)
        finally:
            self.cancels.unregister(claim.deployment_id)
        return claim.deployment_id

    def deployment(self, deployment_id: int) -> Deployment:
        with self.db.read() as s:
            return s.get(Deployment, deployment_id)

    def app(self) -> App:
        with self.db.read() as s:
            return s.query(App).filter_by(name="web").one()

    def phases(self, deployment_id: int) -> list[Phase]:
        return [e.phase for e in self.events.stored(deployment_id) if e.kind == EventKind.PHASE]


@pytest.fixture
def world(db, clock, tmp_path, make_app):
    make_app("web")
    return World(db, clock, tmp_path)


def test_a_deploy_goes_through_every_phase_and_records_the_release(world):
    dep_id = world.service.create("web", rebuild=True).row.id
    assert world.run_next() == dep_id

    dep = world.deployment(dep_id)
    assert (dep.state, dep.phase, dep.url, dep.container_id) == ("SUCCEEDED", "DONE", URL, "c-new")
    assert (dep.commit_sha, dep.image, dep.build_seconds, dep.deploy_seconds) == (SHA, f"web:{SHA[:12]}", 7.5, 4.0)
    assert dep.release["image_id"] == "sha256:1" and dep.release["port"] == 8080
    assert world.phases(dep_id) == [Phase.RESOLVE, Phase.BUILD, Phase.START, Phase.HEALTH, Phase.SWITCH, Phase.STOP_OLD]
    assert world.app().current_deployment_id == dep_id
    assert world.agent.builds[0].force and world.agent.deploys[0].commit_sha == SHA
    progress = [(e.step_current, e.message) for e in world.events.stored(dep_id) if e.kind == EventKind.PROGRESS]
    assert progress == [(1, "FROM scratch"), (2, "COPY . /")]


def test_a_build_failure_ends_at_build_and_never_deploys(world):
    world.agent.build_updates = [BuildUpdate(line="Step 1/1 : RUN false"), BuildUpdate(error="exit code 1")]
    dep_id = world.service.create("web").row.id
    world.run_next()

    dep = world.deployment(dep_id)
    assert (dep.state, dep.failure_phase, dep.failure_reason) == ("FAILED", "BUILD", "build failed: exit code 1")
    assert world.agent.deploys == [] and world.app().current_deployment_id is None


def test_a_build_that_never_got_a_slot_says_so_and_never_deploys(world):
    world.agent.build_updates = [
        BuildUpdate(line="waiting for another build on this server to finish"),
        AgentSlotWaitTimeout("waited 3600s for a build slot on server 'local' (agent at 127.0.0.1:1)")]
    dep_id = world.service.create("web").row.id
    world.run_next()

    dep = world.deployment(dep_id)
    assert (dep.state, dep.failure_phase) == ("FAILED", "BUILD")
    assert dep.failure_reason.startswith("waited 3600s for a build slot on server 'local'")
    assert "TUGBOAT_BUILD_CONCURRENCY" in dep.failure_reason and "deadline" not in dep.failure_reason
    assert world.agent.slot_waits == [3600.0]  # Settings.build_slot_wait
    assert world.agent.deploys == [] and world.app().current_deployment_id is None


def test_a_health_failure_ends_at_health_and_the_old_release_keeps_serving(world):
    world.service.create("web")
    serving = world.run_next()
    world.agent.failure = DeployUpdate(phase=Phase.HEALTH, failure="HEALTH", error="GET / answered 500")

    dep_id = world.service.create("web").row.id
    world.run_next()

    dep = world.deployment(dep_id)
    assert (dep.state, dep.failure_phase, dep.failure_reason) == ("FAILED", "HEALTH", "GET / answered 500")
    assert world.phases(dep_id)[-1] == Phase.HEALTH
    assert world.app().current_deployment_id == serving


def test_a_cancel_before_the_switch_ends_cancelled(world):
    dep_id = world.service.create("web").row.id
    answers = []
    world.agent.during["HEALTH"] = lambda: answers.append(world.service.cancel(dep_id).row.cancel_requested)
    world.run_next()

    dep = world.deployment(dep_id)
    assert answers == [True]
    assert (dep.state, dep.failure_phase) == ("CANCELLED", "HEALTH")
    assert "the previous release keeps serving" in dep.failure_reason
    assert Phase.SWITCH not in world.phases(dep_id)


def test_a_cancel_past_the_switch_is_refused_and_the_deploy_completes(world):
    dep_id = world.service.create("web").row.id
    refusals = []

    def cancel():
        with pytest.raises(FailedPrecondition) as refused:
            world.service.cancel(dep_id)
        refusals.append(refused.value.message)

    world.agent.during["SWITCH"] = cancel
    world.run_next()

    assert world.deployment(dep_id).state == "SUCCEEDED"
    assert len(refusals) == 1 and "already switched traffic" in refusals[0]


def test_a_cancel_while_queued_ends_it_at_once_and_the_next_one_runs(world):
    first = world.service.create("web").row.id
    second = world.service.create("web").row.id
    world.service.cancel(first)

    assert world.run_next() == second
    assert world.deployment(first).state == "CANCELLED" and world.deployment(second).state == "SUCCEEDED"
    assert world.queue.claim("w1") is None


def resume_after_restart(world, phase_reached: str) -> int:
    """Runs a deploy until `phase_reached`, as if the control plane then stopped (its worker shut down)."""
    dep_id = world.service.create("web").row.id
    claim = world.queue.claim("w1")
    token = CancelToken()

    def stop_worker():
        token.shutdown = True
        token.cancel()

    world.agent.during[phase_reached] = stop_worker
    world.pipeline.run(claim, token)
    assert world.deployment(dep_id).state == "RUNNING"
    world.agent.during.clear()
    world.queue.release_all()  # what a new control plane does at start
    return dep_id


def test_resuming_after_a_restart_asks_the_agent_what_serves(world):
    dep_id = resume_after_restart(world, "SWITCH")
    world.agent.containers = [world.agent.serving(dep_id)]
    deploys = len(world.agent.deploys)

    assert world.run_next() == dep_id
    dep = world.deployment(dep_id)
    assert (dep.state, dep.url, dep.container_id) == ("SUCCEEDED", URL, "c-new")
    assert len(world.agent.deploys) == deploys  # finished from what serves, not deployed again
    assert world.app().current_deployment_id == dep_id


def test_resuming_when_the_new_container_does_not_serve_deploys_again_from_resolve(world):
    dep_id = resume_after_restart(world, "HEALTH")
    builds = len(world.agent.builds)

    world.run_next()
    dep = world.deployment(dep_id)
    assert dep.state == "SUCCEEDED" and len(world.agent.builds) == builds + 1
    assert [e.message for e in world.events.stored(dep_id) if "resuming" in e.message]


def test_a_deployment_interrupted_every_time_is_given_up(world):
    dep_id = world.service.create("web").row.id
    for attempt in range(3):
        assert world.queue.claim("w1").attempt == attempt + 1
        world.queue.release_all()
    world.run_next()
    dep = world.deployment(dep_id)
    assert dep.state == "FAILED" and "gave up after 3 attempts" in dep.failure_reason
