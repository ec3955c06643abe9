"""Where an app runs: servers and replicas refused with a message that says what is allowed, the
replicas spread the same way for everyone, `server` and `servers` kept one, and where a serving
release runs read from its outcomes."""

from __future__ import annotations

import pytest

from common.placement import spread as common_spread
from services.apps import placement
from services.apps.service import placement_changes
from services.apps.spec import AppSpec
from services.core.errors import InvalidArgument


def stored(**fields) -> AppSpec:
    return AppSpec(name="web", repo_url="https://example.test/web.git", **fields).with_defaults().validate()


@pytest.mark.parametrize("servers,replicas,expected", [
    (["a"], 1, {"a": 1}),
    (["a", "b"], 4, {"a": 2, "b": 2}),
    (["a", "b"], 5, {"a": 3, "b": 2}),
    (["b", "a", "c"], 7, {"b": 3, "a": 2, "c": 2}),
])
def test_replicas_spread_evenly_and_the_first_servers_take_the_remainder(servers, replicas, expected):
    assert placement.spread(servers, replicas) == expected
    assert list(placement.spread(servers, replicas)) == servers  # rollout order
    assert common_spread(servers, replicas) == expected  # what the clients show


@pytest.mark.parametrize("servers,replicas,says,field", [
    ([], 1, "at least one server", "app.servers"),
    (["a", "b", "a"], 3, "'a' is named twice", "app.servers"),
    (["a", "B"], 2, "server name 'B' is invalid", ""),
    (["a"], 0, "replicas must be 1 to 64", "app.replicas"),
    (["a"], 65, "replicas must be 1 to 64", "app.replicas"),
    (["a", "b", "c"], 2, "2 replicas cannot cover 3 servers", "app.replicas"),
])
def test_bad_servers_or_replicas_are_refused_saying_what_is_allowed(servers, replicas, says, field):
    with pytest.raises(InvalidArgument) as refused:
        placement.validate(servers, replicas)
    assert says in refused.value.message
    assert refused.value.field == field


def test_a_spec_without_servers_runs_on_its_server_with_one_replica_each():
    assert (stored().servers, stored().server, stored().replicas) == (["local"], "local", 1)
    assert (stored(server="a").servers, stored(server="a").replicas) == (["a"], 1)
    spec = stored(servers=["a", "b"])
    assert (spec.server, spec.replicas) == ("a", 2)
    assert stored(servers=["a", "b"], replicas=5).replicas == 5


def test_a_server_that_is_not_the_first_of_servers_is_refused():
    with pytest.raises(InvalidArgument, match="not the first of servers"):
        stored(server="b", servers=["a", "b"])


def test_an_update_of_server_alone_means_that_server_only_and_servers_alone_brings_its_first():
    assert placement_changes({"server": "x"}) == {"server": "x", "servers": ["x"]}
    assert placement_changes({"servers": ["b", "a"]}) == {"servers": ["b", "a"], "server": "b"}
    assert placement_changes({"servers": ["a"], "server": "a"}) == {"servers": ["a"], "server": "a"}
    assert placement_changes({"port": 1}) == {"port": 1}
    with pytest.raises(InvalidArgument, match="servers is empty"):
        placement_changes({"servers": []})  # not a silent move to the default server


def test_the_serving_release_runs_where_its_deployment_succeeded():
    outcomes = [placement.outcome("a", "SUCCEEDED", replicas=2), placement.outcome("b", "FAILED", phase="HEALTH"),
                placement.outcome("c", "SKIPPED")]
    assert placement.succeeded_servers(outcomes, "z") == ("a",)
    assert placement.succeeded_servers([], "z") == ("z",)  # recorded before outcomes existed
    assert placement.legacy_outcomes("z", 1) == [
        {"server": "z", "state": "SUCCEEDED", "phase": "DONE", "reason": "", "replicas": 1}]


def test_outcomes_are_stored_with_every_key_and_a_known_state():
    assert placement.normalized([{"server": "a", "state": "PENDING"}]) == [
        {"server": "a", "state": "PENDING", "phase": "", "reason": "", "replicas": 0}]
    with pytest.raises(ValueError):
        placement.normalized([{"server": "a", "state": "PENDING", "extra": 1}])
    with pytest.raises(ValueError):
        placement.normalized([{"state": "PENDING"}])
