"""The HAProxy config renderer: slots, the host map and the serving addresses."""

from __future__ import annotations

from agent.haproxy_config import render_config
from agent.route_policy import Route, Server


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
    assert "server green 127.0.0.1:40001\n" in web + "\n"
    assert "server blue 127.0.0.1:1 disabled" in web  # a draining slot comes back disabled
    new = cfg.split("backend app_new\n", 1)[1].split("\n\n", 1)[0]
    assert new.count("disabled") == 2
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
