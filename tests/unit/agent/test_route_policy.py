"""The blue/green route policy over typed routes, and the routes.json entry format."""

from __future__ import annotations

import pytest

from agent import route_policy as rp
from agent.route_policy import Route, RoutePolicyError, Server, SlotState, Target

BLUE_GREEN = ("blue", "green")


def test_first_switch_takes_blue_and_drains_nothing():
    route = rp.switch(Route(), [Target("c1", 40001)])
    assert route.servers == (Server("blue", "c1", 40001),) and route.draining == ()


def test_next_switch_takes_the_other_slot_and_drains_the_old_one():
    route = rp.switch(Route(servers=(Server("blue", "c1", 40001),)), [Target("c2", 40002)])
    assert route.servers == (Server("green", "c2", 40002),) and route.draining == ("blue",)
    assert rp.slot_states(route, BLUE_GREEN) == [SlotState("green", "ready", 40002),
                                                 SlotState("blue", "drain")]
    assert rp.drained(route, ["blue"]).draining == ()
    assert rp.slot_states(rp.drained(route, ["blue"]), BLUE_GREEN) == [
        SlotState("green", "ready", 40002), SlotState("blue", "maint")]


def test_re_applying_the_serving_container_keeps_its_slot_and_drains_nothing():
    route = Route(servers=(Server("green", "c1", 40001),))
    again = rp.switch(route, [Target("c1", 40555)])  # Docker restarted it: new port
    assert again.servers == (Server("green", "c1", 40555),) and again.draining == ()


def test_a_switch_takes_a_free_slot_before_a_draining_one():
    route = Route(servers=(Server("green", "c2", 2),), draining=("blue",))
    route = rp.switch(route, [Target("c3", 3)])
    assert route.servers == (Server("slot3", "c3", 3),) and route.draining == ("green", "blue")


def test_with_no_free_slot_a_drain_with_nothing_open_is_cut_short():
    route = Route(servers=(Server("green", "c2", 2),), draining=("blue",))
    route = rp.switch(route, [Target("c3", 3)], BLUE_GREEN)
    assert route.servers == (Server("blue", "c3", 3),) and route.draining == ("green",)


def test_a_slot_still_holding_connections_is_never_reused():
    route = Route(servers=(Server("green", "c2", 2),), draining=("blue",))
    with pytest.raises(RoutePolicyError, match="still holding open connections"):
        rp.switch(route, [Target("c3", 3)], BLUE_GREEN, busy=["blue"])
    pool = ("a", "b", "c")
    route = Route(servers=(Server("c", "c2", 2),), draining=("a", "b"))
    assert rp.switch(route, [Target("c3", 3)], pool, busy=["a"]).servers == (Server("b", "c3", 3),)


def test_replicas_need_free_slots():
    pool = ("a", "b", "c", "d")
    route = rp.switch(Route(), [Target("x", 1), Target("y", 2)], pool)
    assert [s.slot for s in route.servers] == ["a", "b"]
    route = rp.switch(route, [Target("z", 3), Target("w", 4)], pool)
    assert [s.slot for s in route.servers] == ["c", "d"] and route.draining == ("a", "b")
    with pytest.raises(RoutePolicyError):
        rp.switch(Route(servers=(Server("blue", "x", 1),)), [Target("y", 2), Target("z", 3)],
                  BLUE_GREEN)
    with pytest.raises(RoutePolicyError):
        rp.switch(Route(), [])


def test_a_host_belongs_to_one_app():
    routes = {"web": Route(domains=("www.example.test",))}
    rp.check_hosts(routes, "web", ["www.example.test"])  # its own
    rp.check_hosts(routes, "api", ["api.example.test"])
    with pytest.raises(RoutePolicyError, match="already routed to app web"):
        rp.check_hosts(routes, "api", ["www.example.test"])
    with pytest.raises(RoutePolicyError):
        rp.check_hosts(routes, "api", ["web.localhost"])
    assert rp.hosts("web", routes["web"]) == ["web.localhost", "www.example.test"]


def test_route_json_round_trips_and_reads_version_1_entries():
    route = Route(url="http://web.localhost:8000", domains=("a.test",),
                  servers=(Server("green", "c2", 40002),), draining=("blue",))
    assert Route.from_json(route.to_json()) == route
    v1 = {"container_id": "c2", "slot": "green", "host_port": 40002, "draining": "blue",
          "url": "http://web.localhost:8000", "domains": ["a.test"]}
    assert Route.from_json(v1) == route
    assert Route.from_json({"container_id": "", "slot": "", "host_port": 0, "url": "u"}) == \
        Route(url="u")
    assert Route.from_json({"container_id": "abc", "url": "http://127.0.0.1:1"}).container_ids == ("abc",)


def test_the_health_check_is_persisted_with_the_route_and_kept_by_a_switch():
    check = rp.Check(path="/up", status_min=200, status_max=204, interval_ms=250,
                     timeout_ms=700, rise=2, fall=3)
    route = Route(url="u", check=check)
    assert Route.from_json(route.to_json()) == route
    assert Route.from_json({"url": "u"}).check == rp.ANSWERS_HTTP  # saved before checks existed
    assert rp.switch(route, [Target("c1", 40001)]).check == check
