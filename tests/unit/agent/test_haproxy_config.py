"""The HAProxy config renderer: slots, the host map and the serving addresses."""

from __future__ import annotations

import re

from agent.haproxy_config import render_config, status_regex
from agent.route_policy import SLOTS, Check, Route, Server


def test_render_config_slots_map_and_serving_address(tmp_path):
    routes = {"web": Route(domains=("www.example.test",), servers=(Server("green", "abc", 40001),),
                           draining=("blue",)),
              "new": Route()}
    out = render_config(front_host="127.0.0.1", front_port=8123, run_dir=tmp_path, generation=7,
                        routes=routes, server_maxconn=8)
    cfg = out.config
    assert "bind 127.0.0.1:8123" in cfg and "node tugboat-7" in cfg
    assert f"stats socket {tmp_path / 'admin.sock'} mode 600 level admin expose-fd listeners" in cfg
    assert "option http-keep-alive" in cfg and "timeout server 60s" in cfg
    assert "retry-on conn-failure" in cfg and "default-server maxconn 8" in cfg
    web = cfg.split("backend app_web\n", 1)[1].split("\n\n", 1)[0]
    assert "server green 127.0.0.1:40001 check inter 1000ms rise 1 fall 2\n" in web + "\n"
    assert "server blue 127.0.0.1:1 disabled" in web  # a draining slot comes back disabled
    new = cfg.split("backend app_new\n", 1)[1].split("\n\n", 1)[0]
    assert new.count("disabled") == len(SLOTS)
    assert out.host_map.splitlines() == ["new.localhost app_new", "web.localhost app_web",
                                         "www.example.test app_web"]
    assert "status 404" in cfg


def test_no_maxconn_line_without_a_limit_and_replica_slots(tmp_path):
    routes = {"web": Route(servers=(Server("a", "x", 1001), Server("b", "y", 1002)))}
    cfg = render_config(front_host="127.0.0.1", front_port=1, run_dir=tmp_path, generation=1,
                        routes=routes, pool=("a", "b", "c")).config
    assert "default-server maxconn" not in cfg
    web = cfg.split("backend app_web\n", 1)[1]
    assert "server a 127.0.0.1:1001" in web and "server b 127.0.0.1:1002" in web
    assert "server c 127.0.0.1:1 disabled" in web


def _backend(cfg: str, app: str) -> str:
    return cfg.split(f"backend app_{app}\n", 1)[1].split("\n\n", 1)[0]


def test_every_slot_is_checked_with_the_apps_own_health_check(tmp_path):
    check = Check(path="/up?x=1#frag'$HOME", status_min=200, status_max=204, interval_ms=250,
                  timeout_ms=700, rise=3, fall=2)
    routes = {"web": Route(servers=(Server("blue", "x", 1001),), check=check),
              "old": Route()}
    cfg = render_config(front_host="127.0.0.1", front_port=1, run_dir=tmp_path, generation=1,
                        routes=routes).config
    web = _backend(cfg, "web")
    assert "server blue 127.0.0.1:1001 check inter 250ms rise 3 fall 2" in web
    assert "server green 127.0.0.1:1 disabled check inter 250ms rise 3 fall 2" in web
    assert "option httpchk" in web and "timeout check 700ms" in web
    # Quoted and percent-encoded: no comment, variable or quote reaches HAProxy's parser.
    assert "uri '/up?x=1%23frag%27%24HOME' ver HTTP/1.1" in web
    assert "http-check expect rstatus '^(200|201|202|203|204)$'" in web
    old = _backend(cfg, "old")  # a route with no known check: the app must answer HTTP at all
    assert "rstatus '^(1[0-9][0-9]|2[0-9][0-9]|3[0-9][0-9]|4[0-9][0-9]|5[0-9][0-9])$'" in old
    for backend in (web, old):
        assert 'http-error status 503 content-type "text/html' in backend
        assert "is unavailable" in backend


def test_status_regex_matches_exactly_the_range():
    for low, high in [(200, 399), (200, 204), (195, 512), (100, 599), (404, 404), (290, 311)]:
        pattern = re.compile(status_regex(low, high))
        matched = [code for code in range(100, 600) if pattern.match(str(code))]
        assert matched == list(range(low, high + 1)), (low, high)
