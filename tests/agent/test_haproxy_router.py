"""The HAProxy router against a real HAProxy with Python backends: switch, drain, host
clashes, remove, and the persisted route served again by a new router (agent restart)."""

from __future__ import annotations

import http.server
import json
import shutil
import socketserver
import threading
from pathlib import Path

import pytest

from agent.haproxy import HAProxyRouter
from agent.router import RouterError, Target
from tests.conftest import free_port
from tests.support.agent_calls import front_get


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
        assert router.switch("web", [Target("c1", p1)]) == f"http://web.localhost:{port}"
        assert front_get(front, "WEB.example.test:80") == (200, "one")
        router.switch("web", [Target("c2", p2)])
        assert front_get(front, "web.localhost") == (200, "two")
        assert "drained" in router.drain("web", 1)
        assert router.serving("web") == ("c2",)
        with pytest.raises(RouterError):
            router.ensure_app("other", ["web.example.test"])  # host taken by web
        routes = json.loads((tmp_path / "state" / "routes.json").read_text())["apps"]
        assert routes["web"]["servers"] == [{"slot": "green", "container_id": "c2", "host_port": p2}]
        assert routes["web"]["draining"] == []
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


@pytest.mark.skipif(not shutil.which("haproxy") and not Path("/usr/sbin/haproxy").exists(),
                    reason="haproxy not installed")
def test_apps_added_at_once_share_reloads_and_all_serve(tmp_path, monkeypatch):
    """Twenty first deploys at once: every app is routed and serves, through fewer reloads than
    apps (each waits for a reload that carries its route, not for one of its own)."""
    backend, backend_port = _backend("shared")
    port = free_port()
    front = f"127.0.0.1:{port}"
    router = HAProxyRouter(tmp_path / "state", front_port=port)
    router.start()
    reloads = []
    reload = router.process.reload
    monkeypatch.setattr(router.process, "reload", lambda: (reloads.append(1), reload())[1])
    apps = [f"app{i}" for i in range(20)]
    errors = []
    together = threading.Barrier(len(apps))  # all at once, even when threads start slowly

    def add(app: str) -> None:
        try:
            together.wait(30)
            router.ensure_app(app)
            router.switch(app, [Target(f"c-{app}", backend_port)])
        except Exception as exc:
            errors.append(exc)

    try:
        threads = [threading.Thread(target=add, args=(app,)) for app in apps]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert errors == []
        assert 1 <= len(reloads) < len(apps)
        for app in apps:
            assert front_get(front, f"{app}.localhost") == (200, "shared")
    finally:
        router.close()
        backend.shutdown()


@pytest.mark.skipif(not shutil.which("haproxy") and not Path("/usr/sbin/haproxy").exists(),
                    reason="haproxy not installed")
def test_a_reload_the_master_never_got_is_asked_for_again(tmp_path, monkeypatch):
    """The master CLI can drop a `reload` (a connection it took while busy): the route change
    must still come into service, by asking again, instead of failing the deploy."""
    from agent import frontdoor_client
    monkeypatch.setattr(frontdoor_client, "RESEND_SECONDS", 0.5)
    backend, backend_port = _backend("asked twice")
    port = free_port()
    router = HAProxyRouter(tmp_path / "state", front_port=port)
    router.start()
    sent = []
    command = router.process._master_command

    def lose_the_first(text: str) -> None:
        sent.append(text)
        if len(sent) > 1:
            command(text)
    monkeypatch.setattr(router.process, "_master_command", lose_the_first)
    try:
        router.ensure_app("web")
        router.switch("web", [Target("c1", backend_port)])
        assert len(sent) >= 2 and set(sent) == {"reload"}
        assert front_get(f"127.0.0.1:{port}", "web.localhost") == (200, "asked twice")
    finally:
        router.close()
        backend.shutdown()
