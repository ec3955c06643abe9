"""Docker-free checks: HAProxy config rendering, the health policy,
agent config/CLI for the router, and the router against a real HAProxy with Python backends."""

from __future__ import annotations

import http.server
import json
import shutil
import socketserver
import threading
from pathlib import Path

import pytest

from agent.config import AgentConfig, parse_front_door
from agent.haproxy import HAProxyRouter, render_config
from agent.health import HealthPolicy
from agent.main import parse_args
from agent.router import DirectRouter, RouterError, Target
from agent.server import make_router
from tests.conftest import free_port
from tests.support.agent_calls import front_get


def test_render_config_slots_map_and_serving_address(tmp_path):
    routes = {"web": {"container_id": "abc", "slot": "green", "host_port": 40001,
                      "domains": ["www.example.test"]},
              "new": {"container_id": "", "slot": "", "host_port": 0, "domains": []}}
    out = render_config(front_host="127.0.0.1", front_port=8123, run_dir=tmp_path, generation=7,
                        routes=routes, server_maxconn=8)
    cfg = out.config
    assert "bind 127.0.0.1:8123" in cfg and "node tugboat-7" in cfg
    assert f"stats socket {tmp_path / 'admin.sock'} mode 600 level admin expose-fd listeners" in cfg
    assert "option http-keep-alive" in cfg and "timeout server 60s" in cfg
    assert "retry-on conn-failure" in cfg and "default-server maxconn 8" in cfg
    web = cfg.split("backend app_web\n", 1)[1].split("\n\n", 1)[0]
    assert "server green 127.0.0.1:40001\n" in web + "\n"
    assert "server blue 127.0.0.1:1 disabled" in web
    new = cfg.split("backend app_new\n", 1)[1].split("\n\n", 1)[0]
    assert new.count("disabled") == 2
    assert out.host_map.splitlines() == ["new.localhost app_new", "web.localhost app_web",
                                         "www.example.test app_web"]
    assert "status 404" in cfg


def test_health_policy_defaults_and_bounds():
    assert HealthPolicy.from_values() == HealthPolicy(False, 200, 399, 100, 1000, 1)
    assert HealthPolicy.from_values(status_max=404).status_max == 404
    with pytest.raises(ValueError):
        HealthPolicy.from_values(status_min=500, status_max=404)


def test_agent_config_and_cli_router_options(tmp_path, monkeypatch):
    assert parse_front_door("0.0.0.0:9000") == ("0.0.0.0", 9000)
    assert parse_front_door("9001") == ("127.0.0.1", 9001)
    with pytest.raises(ValueError):
        parse_front_door("x:y")
    monkeypatch.setenv("TUGBOAT_FRONT_DOOR", "127.0.0.1:9100")
    monkeypatch.setenv("TUGBOAT_ROUTER", "direct")
    config = AgentConfig.from_env(home=tmp_path)
    assert (config.front_door_port, config.router, config.front_door) == (9100, "direct", "")
    assert isinstance(make_router(config), DirectRouter)
    config = AgentConfig.from_env(home=tmp_path, front_door="127.0.0.1:9200", router="haproxy")
    assert config.front_door == "127.0.0.1:9200"
    assert AgentConfig(state_dir=tmp_path).front_door_port == 8000
    args = parse_args(["--front-door", "127.0.0.1:9300", "--router", "direct"])
    assert (args.front_door, args.router) == ("127.0.0.1:9300", "direct")
    with pytest.raises(ValueError):
        AgentConfig(state_dir=tmp_path, router="nginx")


def _backend(text: str) -> tuple[socketserver.TCPServer, int]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            data = text.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


@pytest.mark.skipif(not shutil.which("haproxy") and not Path("/usr/sbin/haproxy").exists(),
                    reason="haproxy not installed")
def test_haproxy_router_switch_drain_remove_and_restore(tmp_path):
    (one, p1), (two, p2) = _backend("one"), _backend("two")
    port = free_port()
    front = f"127.0.0.1:{port}"
    router = HAProxyRouter(tmp_path / "state", front_port=port)
    router.start()
    try:
        assert front_get(front, "web.localhost")[0] == 404
        router.ensure_app("web", ["web.example.test"])
        assert router.switch("web", Target("c1", p1)) == f"http://web.localhost:{port}"
        assert front_get(front, "WEB.example.test:80") == (200, "one")
        router.switch("web", Target("c2", p2))
        assert front_get(front, "web.localhost") == (200, "two")
        assert "drained" in router.drain("web", 1)
        assert router.current("web") == "c2"
        with pytest.raises(RouterError):
            router.ensure_app("other", ["web.example.test"])  # host taken by web
        routes = json.loads((tmp_path / "state" / "routes.json").read_text())["apps"]
        assert routes["web"]["slot"] == "green" and routes["web"]["host_port"] == p2
    finally:
        router.close()
    # A new router on the same state dir (agent restart) serves the persisted route at once.
    again = HAProxyRouter(tmp_path / "state", front_port=port)
    again.start()
    try:
        assert front_get(front, "web.localhost") == (200, "two")
        again.remove("web")
        assert front_get(front, "web.localhost")[0] == 404
    finally:
        again.close()
        one.shutdown(), two.shutdown()


class _FakeEngine:
    """Just enough of DockerEngine for the releaser: one container that gets OOM-killed."""

    def __init__(self):
        from datetime import datetime, timezone

        from agent.docker_engine import ContainerRecord
        self.removed = []
        self.record = ContainerRecord(id="new1", name="web-7", app="web", deployment_id=7,
                                      commit_sha="a" * 40, image="web:x", state="exited",
                                      exit_code=137, restart_count=0, host_port=40001,
                                      created=datetime.now(timezone.utc), oom_killed=True)

    def list(self, app=None):
        return []

    def run(self, spec):
        self.spec = spec
        return self.record

    def inspect(self, container_id):
        return self.record

    def logs_tail(self, container_id, lines):
        return ["allocating a lot"]

    def remove(self, container_id, force=True):
        self.removed.append(container_id)


def test_oom_killed_new_container_is_removed_and_never_routed(tmp_path):
    from agent.operations import CancelToken
    from agent.releaser import DeploySpec, Failure, Releaser

    engine, router = _FakeEngine(), DirectRouter(tmp_path / "routes.json")
    spec = DeploySpec(app="web", deployment_id=7, image="web:x", commit_sha="a" * 40, port=8080,
                      stop_signal="SIGQUIT")
    last = list(Releaser(engine, router).deploy(spec, CancelToken()))[-1]
    assert last.failure is Failure.START and "OOM-killed" in last.error
    assert "allocating a lot" in last.error
    assert engine.removed == ["new1"] and router.current("web") is None
    assert engine.spec.stop_signal == "SIGQUIT"
