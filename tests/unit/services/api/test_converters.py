"""converters.app_to_pb: the serving release, the failed deployment beside it and the health record."""

from __future__ import annotations

from datetime import datetime, timezone

from serversinc.v1 import app_pb2

from services.api.converters import app_to_pb
from services.apps.status import AppView
from services.db.models import App, AppHealth, Deployment, Server
from services.deployments.service import DeploymentView

WHEN = datetime(2024, 1, 1, tzinfo=timezone.utc)


def test_a_serving_release_with_a_failed_deployment_beside_it_and_a_stale_health_record():
    app = App(name="web", repo_url="r", branch="main", port=8080, health_path="/", dockerfile="Dockerfile",
              context_dir=".", server=Server(name="local", address="a"), url="http://web.localhost",
              current_deployment_id=3)
    serving = Deployment(id=3, app_id=1, state="SUCCEEDED", commit_sha="a" * 40, commit_message="v1", finished_at=WHEN)
    failed = Deployment(id=4, app_id=1, state="FAILED")
    health = AppHealth(app_id=1, deployment_id=3, health="DOWN", detail="container web-1 is exited",
                       observed_at=WHEN, stale=True)
    msg = app_to_pb(app, "DOWN", DeploymentView(serving), view=AppView("DOWN", serving, failed, health))
    assert msg.status == app_pb2.APP_STATUS_DOWN
    assert (msg.current_deployment, msg.current_commit) == ("apps/web/deployments/3", "a" * 40)
    assert (msg.latest_deployment, msg.latest_deployment_failed) == ("apps/web/deployments/4", True)
    assert (msg.health_detail, msg.health_stale) == ("container web-1 is exited", True)
    assert msg.health_observe_time.ToDatetime(tzinfo=timezone.utc) == WHEN


def test_without_a_view_the_new_fields_stay_unset():
    app = App(name="web", repo_url="r", branch="main", port=8080, health_path="/", dockerfile="Dockerfile",
              context_dir=".", server=Server(name="local", address="a"))
    msg = app_to_pb(app, "NEW")
    assert not msg.latest_deployment and not msg.HasField("health_observe_time")
