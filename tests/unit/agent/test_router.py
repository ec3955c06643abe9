"""routes.json: the direct router persists typed routes atomically; version 1 files still load."""

from __future__ import annotations

import json

from agent.route_policy import ANSWERS_HTTP, Route, Server
from agent.router import DirectRouter, RouteStore, Target


def test_direct_router_persists_atomically(tmp_path):
    path = tmp_path / "routes.json"
    router = DirectRouter(path)
    assert router.serving("web") == ()
    assert router.switch("web", [Target("abc", 40001)]) == "http://127.0.0.1:40001"
    assert DirectRouter(path).serving("web") == ("abc",)
    assert json.loads(path.read_text()) == {"version": 2, "apps": {"web": {
        "url": "http://127.0.0.1:40001", "domains": [], "draining": [],
        "servers": [{"slot": "", "container_id": "abc", "host_port": 40001}],
        "check": ANSWERS_HTTP.to_json()}}}
    router.remove("web")
    assert DirectRouter(path).serving("web") == ()
    assert [p.name for p in tmp_path.iterdir()] == ["routes.json"]  # no temp files left


def test_a_version_1_file_and_a_corrupt_entry_load(tmp_path):
    path = tmp_path / "routes.json"
    path.write_text(json.dumps({"version": 1, "apps": {
        "web": {"container_id": "c1", "slot": "blue", "host_port": 40001, "draining": "",
                "url": "http://web.localhost:8000", "domains": ["a.test"]},
        "bad": {"servers": [{"container_id": "x", "host_port": "not a port"}]}}}))
    assert RouteStore(path).load() == {"web": Route(
        url="http://web.localhost:8000", domains=("a.test",),
        servers=(Server("blue", "c1", 40001),))}
    path.write_text("{not json")
    assert RouteStore(path).load() == {}


def test_haproxy_stat_rows_read_as_health():
    from agent.haproxy import server_health
    from agent.router import Health

    up = server_health({"status": "UP", "check_status": "L7OK", "check_code": "200"})
    assert up.health is Health.HEALTHY and "L7OK 200" in up.detail
    assert server_health({"status": "UP 1/2", "check_status": "L7STS", "check_code": "500"}).health \
        is Health.HEALTHY  # one failed check: still in rotation
    down = server_health({"status": "DOWN", "check_status": "L4CON", "check_code": ""})
    assert down.health is Health.UNHEALTHY and "L4CON" in down.detail
    assert server_health({"status": "MAINT"}).health is Health.UNKNOWN
    assert server_health(None).health is Health.UNKNOWN
