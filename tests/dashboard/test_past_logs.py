"""The app page's Logs tab reads a past release: after a config release replaced deployment 1,
picking #1 shows the lines its (removed) container wrote, from its server's archive."""

from __future__ import annotations

from serversinc.v1 import app_service_pb2

from tests.integration.test_config_release import ENV_APP
from tests.support.sample_app import commit_files

APP_PAGE = "views/app_detail.py"


def test_the_logs_tab_shows_a_replaced_release(dashboard, control_plane, sample_repo, sample_url, app_name):
    commit_files(sample_repo, {"Dockerfile": ENV_APP}, "serves its env")
    control_plane.create_app(app_name, sample_url, env={"GREETING": "one"})
    first = control_plane.wait(control_plane.deploy(app_name).name)
    reply = control_plane.apps.SetAppEnv(app_service_pb2.SetAppEnvRequest(
        name=app_name, env={"GREETING": "two"}, deploy=True))
    control_plane.wait(reply.deployment.name)

    at = dashboard(control_plane.address).run()
    at.switch_page(APP_PAGE)
    at.query_params["app"] = app_name
    at.run()
    assert not at.exception, at.exception
    logs = lambda: "\n".join(c.value for c in at.code)  # noqa: E731
    assert "started with two" in logs() and "started with one" not in logs(), [i.value for i in at.info]
    at.selectbox(key="log_release").select(first.name).run()
    assert not at.exception, at.exception
    assert "started with one" in logs() and "started with two" not in logs()
