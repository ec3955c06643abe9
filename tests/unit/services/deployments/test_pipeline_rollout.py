"""The pipeline over two fake agents: built once, rolled out server by server, a failure puts the
servers already done back, a move removes the app from the server it left."""

from __future__ import annotations

import pytest

from services.agents.port import AgentError, AgentUnavailable, AppRemoval, CancelToken, DeployUpdate
from services.apps import repository as apps_repo
from services.core.states import Phase
from services.db.models import App, Server
from tests.unit.services.deployments.test_pipeline import SHA, FakeAgent, World


class Agents:
    def __init__(self, agents):
        self.agents = agents

    def for_server(self, name):
        return self.agents[name]


class Removable(FakeAgent):
    def __init__(self, monotonic):
        super().__init__(monotonic)
        self.removed, self.remove_error = [], None

    def remove_app(self, app, *, delete_volumes=False):
        if self.remove_error:
            raise AgentError(self.remove_error)
        self.removed.append((app, delete_volumes))
        return AppRemoval(containers=2)


@pytest.fixture
def world(db, clock, tmp_path, make_app):
    app_id = make_app("web", replicas=3)
    with db.session() as s:
        s.add_all([Server(name="a", address="127.0.0.1:2"), Server(name="b", address="127.0.0.1:3")])
        s.flush()
        apps_repo.set_app_servers(s, s.get(App, app_id), [s.query(Server).filter_by(name=n).one() for n in ("a", "b")])
    w = World(db, clock, tmp_path)
    w.by_server = {name: Removable(w.monotonic) for name in ("a", "b", "local")}
    w.pipeline.agents = Agents(w.by_server)
    return w


def servers(db, app_id, names):
    with db.session() as s:
        apps_repo.set_app_servers(s, s.get(App, app_id), [s.query(Server).filter_by(name=n).one() for n in names])


def states(dep):
    return [(o["server"], o["state"], o["replicas"]) for o in dep.server_outcomes]


def test_built_on_the_first_server_once_then_each_server_deploys_its_share(world):
    a, b = world.by_server["a"], world.by_server["b"]
    world.service.create("web")
    dep = world.deployment(world.run_next())
    assert dep.state == "SUCCEEDED", dep.failure_reason
    assert states(dep) == [("a", "SUCCEEDED", 2), ("b", "SUCCEEDED", 1)]
    assert [d.replicas for d in a.deploys + b.deploys] == [2, 1]
    # No registry: b builds the same commit itself; the release records what each server ran.
    assert b.builds[0].commit_sha == SHA and dep.release["images"] == {"a": "sha256:1", "b": "sha256:1"}
    assert dep.image_id == "sha256:1" and dep.url


def test_a_failure_on_b_puts_a_back_on_the_previous_release_and_names_b(world):
    world.service.create("web")
    first = world.run_next()
    a, b = world.by_server["a"], world.by_server["b"]
    b.failure = DeployUpdate(phase=Phase.HEALTH, failure="HEALTH", error="GET / answered 500")
    world.service.create("web")
    dep = world.deployment(world.run_next())
    assert dep.state == "FAILED" and dep.failure_phase == "HEALTH"
    assert dep.failure_reason.startswith("server 'b' failed at health: GET / answered 500"), dep.failure_reason
    assert "'a' put back" in dep.failure_reason
    assert states(dep) == [("a", "ROLLED_BACK", 2), ("b", "FAILED", 1)]
    # a ran the new release, then the previous one again, by the image it ran, under its deployment.
    back = a.deploys[-1]
    assert (back.deployment_id, back.image, back.replicas, back.release_command) == (first, "sha256:1", 2, [])
    assert world.app().current_deployment_id == first


def test_moving_removes_the_app_from_the_server_it_left_and_a_failure_there_is_only_noted(world, db):
    app_id = world.app().id
    servers(db, app_id, ["a"])
    world.service.create("web")
    world.run_next()
    servers(db, app_id, ["b"])
    world.by_server["a"].remove_error = "server 'a' is unreachable"
    world.service.create("web")
    dep = world.deployment(world.run_next())
    assert dep.state == "SUCCEEDED" and states(dep) == [("b", "SUCCEEDED", 3)]
    lines = [e.message for e in world.events.stored(dep.id)]
    assert any("could not be removed there: server 'a' is unreachable" in line for line in lines), lines
    world.by_server["a"].remove_error = None
    servers(db, app_id, ["a"])
    world.service.create("web")
    world.run_next()
    assert world.by_server["b"].removed == [("web", False)]



def interrupted(world, server: str, phase: str) -> int:
    """A rollout the control plane stopped at `phase` of `server`'s deploy, released for a new one."""
    dep_id = world.service.create("web").row.id
    claim = world.queue.claim("w1")
    token = CancelToken()

    def stop_worker():
        token.shutdown = True
        token.cancel()

    world.by_server[server].during[phase] = stop_worker
    world.pipeline.run(claim, token)
    assert world.deployment(dep_id).state == "RUNNING"
    world.by_server[server].during.clear()
    world.queue.release_all()
    return dep_id


def test_a_resumed_rollout_asks_each_server_and_deploys_only_where_the_release_does_not_serve(world):
    a, b = world.by_server["a"], world.by_server["b"]
    dep_id = interrupted(world, "b", "HEALTH")
    a.containers = [a.serving(dep_id)]  # a switched before the stop; b undid its new container
    a_deploys, b_deploys = len(a.deploys), len(b.deploys)

    assert world.run_next() == dep_id
    dep = world.deployment(dep_id)
    assert dep.state == "SUCCEEDED", dep.failure_reason
    assert (len(a.deploys), len(b.deploys)) == (a_deploys, b_deploys + 1)
    assert [(o["server"], o["state"], bool(o["reason"])) for o in dep.server_outcomes] == [
        ("a", "SUCCEEDED", True), ("b", "SUCCEEDED", False)]


def test_a_resumed_rollout_serving_everywhere_finishes_from_what_serves(world):
    a, b = world.by_server["a"], world.by_server["b"]
    dep_id = interrupted(world, "b", "SWITCH")
    a.containers, b.containers = [a.serving(dep_id)], [b.serving(dep_id)]
    deploys = len(a.deploys) + len(b.deploys)

    assert world.run_next() == dep_id
    dep = world.deployment(dep_id)
    assert dep.state == "SUCCEEDED" and len(a.deploys) + len(b.deploys) == deploys
    assert [o["state"] for o in dep.server_outcomes] == ["SUCCEEDED", "SUCCEEDED"]
    assert world.app().current_deployment_id == dep_id


def test_a_cancel_during_b_puts_a_back_and_ends_cancelled(world):
    world.service.create("web")
    first = world.run_next()
    a, b = world.by_server["a"], world.by_server["b"]
    dep_id = world.service.create("web").row.id
    b.during["HEALTH"] = lambda: world.service.cancel(dep_id)
    world.run_next()
    dep = world.deployment(dep_id)
    assert dep.state == "CANCELLED"
    assert [(o["server"], o["state"]) for o in dep.server_outcomes] == [("a", "ROLLED_BACK"), ("b", "FAILED")]
    assert a.deploys[-1].deployment_id == first and world.app().current_deployment_id == first


def test_a_server_that_cannot_be_reached_fails_at_start_and_a_goes_back(world):
    world.service.create("web")
    world.run_next()
    b = world.by_server["b"]

    def unreachable(spec, *, timeout, cancel):
        raise AgentUnavailable("server 'b' (agent at 127.0.0.1:3) is unreachable: no connection within 5s")
        yield  # a generator, as the client's deploy is

    b.deploy = unreachable
    world.service.create("web")
    dep = world.deployment(world.run_next())
    assert dep.state == "FAILED" and dep.failure_phase == "START", dep.failure_reason
    assert dep.failure_reason.startswith("server 'b' failed at start: start failed: server 'b'"), dep.failure_reason
    assert [(o["server"], o["state"]) for o in dep.server_outcomes] == [("a", "ROLLED_BACK"), ("b", "FAILED")]
