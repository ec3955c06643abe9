"""Fixtures for the webhook bridge: the real control plane (re-exported) and the bridge served by
uvicorn in a thread on a free 127.0.0.1 port, wired to it over gRPC."""

from __future__ import annotations

import threading
import time

import pytest
import requests
import uvicorn
from serversinc.v1 import app_service_pb2, deployment_service_pb2

from bridge.main import build
from bridge.settings import WebhookSettings
from tests.conftest import free_port
from tests.integration import conftest as integration
from tests.bridge.github import Sender

# The integration suite's fixtures, used here too (assigned, not imported: a test's parameter of
# the same name is then not a redefinition of an unused import).
control_plane = integration.control_plane
sample_repo = integration.sample_repo
sample_url = integration.sample_url

GLOBAL_SECRET = "global-test-secret-3f9c2e"


class ThreadedServer:
    """uvicorn.Server in a daemon thread (it installs no signal handlers off the main thread)."""

    def __init__(self, app, port: int):
        self.port = port
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                    access_log=False, lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, name="webhook-bridge", daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the webhook bridge did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)


class Bridge(Sender):
    def __init__(self, base: str, control_plane):
        super().__init__(base)
        self.cp = control_plane

    def secret(self, app: str) -> str:
        return self.cp.apps.GetAppWebhook(app_service_pb2.GetAppWebhookRequest(name=app)).secret

    def deployments(self, app: str) -> list:
        return list(self.cp.deployments.ListDeployments(
            deployment_service_pb2.ListDeploymentsRequest(parent=f"apps/{app}")).deployments)

    def app_url(self, app: str) -> str:
        return self.cp.apps.GetApp(app_service_pb2.GetAppRequest(name=app)).url


@pytest.fixture
def bridge(control_plane):  # noqa: F811
    settings = WebhookSettings(global_secret=GLOBAL_SECRET)
    app, connection = build(settings, api=control_plane.address)
    port = free_port()
    with ThreadedServer(app, port):
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        yield Bridge(f"http://127.0.0.1:{port}", control_plane)
    connection.close()
