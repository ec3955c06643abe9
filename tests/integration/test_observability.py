"""Operators see what the platform does: Prometheus metrics and signed deploy notifications."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from serversinc.v1 import app_service_pb2, deployment_pb2

from tests.support.sample_app import DOCKERFILE, commit_files

S = deployment_pb2


class Receiver:
    """A real HTTP server on loopback that records notifications; it can fail the first N."""

    def __init__(self, fail_first: int = 0):
        self.received: list[tuple[dict, bytes]] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.fail_first > 0:
                    receiver.fail_first -= 1
                    self.send_response(503)
                else:
                    receiver.received.append((dict(self.headers), body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int, timeout: float = 30) -> list[tuple[dict, bytes]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.received) >= count, f"got {len(self.received)} notifications, wanted {count}"
        return self.received

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver(fail_first=2)
    yield r
    r.close()


def test_success_and_failure_notifications_are_signed_and_retried(control_plane, sample_repo, sample_url, app_name, receiver):
    control_plane.create_app(app_name, sample_url, notify_urls=[receiver.url])
    hook = control_plane.apps.GetAppWebhook(app_service_pb2.GetAppWebhookRequest(name=app_name))
    ok = control_plane.wait(control_plane.deploy(app_name).name)
    assert ok.state == S.DEPLOYMENT_STATE_SUCCEEDED
    commit_files(sample_repo, {"Dockerfile": DOCKERFILE + 'RUN ["/bin/busybox","false"]\n'}, "broken")
    bad = control_plane.wait(control_plane.deploy(app_name).name)
    assert bad.state == S.DEPLOYMENT_STATE_FAILED

    received = receiver.wait(2)  # the first two attempts got 503 and were retried
    by_event = {}
    for headers, body in received:
        expected = "sha256=" + hmac.new(hook.notification_secret.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Serversinc-Signature-256"], expected)
        payload = json.loads(body)
        by_event[payload["event"]] = payload
    assert set(by_event) == {"deployment.succeeded", "deployment.failed"}
    good = by_event["deployment.succeeded"]
    assert good["app"] == app_name and good["deployment"]["name"] == ok.name and app_name in good["text"]
    failed = by_event["deployment.failed"]
    assert failed["deployment"]["failure_phase"] == "BUILD" and "failed at build" in failed["text"]
    assert hook.notification_secret not in json.dumps(by_event)


def test_bad_notification_urls_are_refused(control_plane, sample_url):
    import grpc

    for url in ["ftp://example.com/x", "not a url", "http://user:pw@127.0.0.1/x", "javascript:alert(1)"]:
        with pytest.raises(grpc.RpcError) as info:
            control_plane.create_app("web", sample_url, notify_urls=[url])
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_metrics_count_a_deploy_with_its_duration(control_plane, sample_url, app_name):
    control_plane.create_app(app_name, sample_url)
    dep = control_plane.wait(control_plane.deploy(app_name, rebuild=True).name)
    assert dep.state == S.DEPLOYMENT_STATE_SUCCEEDED
    text = requests.get(f"http://127.0.0.1:{control_plane.platform.metrics_port}/metrics", timeout=5).text
    samples = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines() if line and not line.startswith("#")}
    assert samples['serversinc_deployments_total{state="succeeded"}'] == 1.0
    assert samples["serversinc_deploy_duration_seconds_count"] == 1.0
    assert samples["serversinc_deploy_duration_seconds_sum"] == pytest.approx(dep.deploy_seconds, rel=0.01)
    assert samples["serversinc_build_duration_seconds_count"] == 1.0
    assert samples["serversinc_deployment_queue_depth"] == 0.0
    assert samples['serversinc_agent_up{server="local"}'] == 1.0
