"""JSON output is the scripting contract: snake_case proto names, enum names, every field, url always present."""

import json

from google.protobuf import timestamp_pb2

from serversinc.v1 import app_pb2, deployment_pb2
from cli import render


def test_app_json_has_url_and_snake_case_keys(capsys):
    app = app_pb2.App(name="web", repo_url="r", branch="main", status=app_pb2.APP_STATUS_NEW)
    render.print_json(app)
    data = json.loads(capsys.readouterr().out)
    assert data["url"] == ""  # present even before the first deployment
    assert data["repo_url"] == "r" and "repoUrl" not in data
    assert data["status"] == "APP_STATUS_NEW"
    assert set(data) == {f.name for f in app_pb2.App.DESCRIPTOR.fields}
    assert data["last_deploy_time"] is None and data["env"] == {}
    assert data["health_timeout_seconds"] == 0


def test_list_json_is_an_array(capsys):
    render.print_json([app_pb2.App(name="a"), app_pb2.App(name="b", url="http://b.localhost")])
    data = json.loads(capsys.readouterr().out)
    assert [a["name"] for a in data] == ["a", "b"]
    assert data[1]["url"] == "http://b.localhost" and all("url" in a for a in data)


def test_deployment_json_fields():
    d = deployment_pb2.Deployment(
        name="deployments/3", id=3, app="web", state=deployment_pb2.DEPLOYMENT_STATE_FAILED,
        failure_phase=deployment_pb2.DEPLOYMENT_PHASE_HEALTH, failure_reason="no answer on /",
        create_time=timestamp_pb2.Timestamp(seconds=1_700_000_000),
    )
    data = render.to_dict(d)
    assert data["state"] == "DEPLOYMENT_STATE_FAILED"
    assert data["failure_phase"] == "DEPLOYMENT_PHASE_HEALTH"
    assert data["url"] == "" and data["queue_position"] == 0 and data["release"] is None
    assert data["create_time"].startswith("2023-11-14T")
    assert set(data) == {f.name for f in deployment_pb2.Deployment.DESCRIPTOR.fields}


def test_unset_time_is_blank():
    assert render.fmt_time(timestamp_pb2.Timestamp(), has=False) == ""


def test_tables_render_without_markup_errors():
    from rich.console import Console
    c = Console(width=200, record=True)
    c.print(render.apps_table([app_pb2.App(name="web", status=app_pb2.APP_STATUS_RUNNING, url="[x]")]))
    c.print(render.deployments_table([deployment_pb2.Deployment(
        name="deployments/1", id=1, state=deployment_pb2.DEPLOYMENT_STATE_QUEUED, queue_position=2)]))
    text = c.export_text()
    assert "running" in text and "[x]" in text and "queued" in text


def test_status_words_flag_a_failed_deployment_beside_the_serving_release_and_a_stale_status():
    serving = dict(name="web", current_deployment="apps/web/deployments/3", latest_deployment="apps/web/deployments/4")
    assert render.app_status_words(app_pb2.App(status=app_pb2.APP_STATUS_RUNNING, latest_deployment_failed=True,
                                               **serving)) == "running, deployment 4 failed"
    assert render.app_status_words(app_pb2.App(status=app_pb2.APP_STATUS_DOWN, health_stale=True,
                                               **serving)) == "down, stale"
    assert render.app_status_words(app_pb2.App(status=app_pb2.APP_STATUS_FAILED, latest_deployment_failed=True,
                                               latest_deployment="apps/web/deployments/1")) == "failed"
    assert render.app_status_words(app_pb2.App(status=app_pb2.APP_STATUS_DEGRADED, **serving)) == "degraded"
