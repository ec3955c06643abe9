"""The dashboard shows where an app runs (servers in rollout order, replicas per server) and what
each server did in a deployment."""

from __future__ import annotations

from serversinc.v1 import server_service_pb2 as spb

from services.apps import placement
from services.db.models import Deployment
from tests.dashboard.test_apptest import APP_PAGE, DEPLOYMENT_PAGE, texts


def test_the_app_page_shows_servers_and_replicas_and_the_deployment_page_each_servers_outcome(
        dashboard, control_plane, sample_url):
    control_plane.servers.CreateServer(spb.CreateServerRequest(name="edge", address="127.0.0.1:1"))
    control_plane.create_app("web", sample_url, servers=["local", "edge"], replicas=3)
    at = dashboard(control_plane.address).run()
    at.switch_page(APP_PAGE)
    at.query_params["app"] = "web"
    at.run()
    assert not at.exception, at.exception
    page = texts(at)
    assert "servers `local`, `edge` · replicas 3 (2 on local, 1 on edge)" in page, page

    # A deployment's record of each server, as a rollout that failed on the second server writes it.
    dep = control_plane.deploy("web")
    control_plane.wait(dep.name)
    with control_plane.platform.db.session() as s:
        s.get(Deployment, dep.id).server_outcomes = [
            placement.outcome("local", "ROLLED_BACK", phase="SWITCH", reason="edge failed", replicas=2),
            placement.outcome("edge", "FAILED", phase="HEALTH", reason="not healthy within 2s", replicas=1)]
    at.switch_page(DEPLOYMENT_PAGE)
    at.query_params["deployment"] = str(dep.id)
    at.run()
    assert not at.exception, at.exception
    page = texts(at)
    assert "server `local`: rolled-back at switch: edge failed (2 replicas)" in page, page
    assert "server `edge`: failed at health: not healthy within 2s (1 replica)" in page, page
