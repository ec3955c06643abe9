"""The dashboard driven headless through streamlit.testing.v1.AppTest against a real control plane."""

from __future__ import annotations

import socket
import time

from serversinc.v1 import app_service_pb2

DEPLOYMENT_PAGE = "views/deployment.py"
APP_PAGE = "views/app_detail.py"


def texts(at) -> str:
    """Everything a person reads on the page, as one string."""
    parts = [e.value for kind in ("markdown", "success", "error", "info", "warning", "caption", "code", "title")
             for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


def fill_create_form(at, name: str, url: str):
    at.text_input(key="create_name").input(name)
    at.text_input(key="create_repo_url").input(url)
    at.number_input(key="create_port").set_value(8080)
    return at.button(key="create_submit").click().run()


def wait_for_success(at, timeout: float = 90):
    """Rerun the deployment page (as its live fragment would) until it shows the outcome."""
    deadline = time.monotonic() + timeout
    while "SUCCEEDED" not in texts(at) and time.monotonic() < deadline:
        assert not at.exception, at.exception
        assert "FAILED" not in texts(at), texts(at)
        time.sleep(0.3)
        at.run()


def deploy_from_app_page(at, app_name: str, button: str) -> str:
    at.switch_page(APP_PAGE)
    at.query_params.clear()
    at.query_params["app"] = app_name
    at.run()
    assert not at.exception, at.exception
    at.button(key=button).click().run()
    assert not at.exception, at.exception
    dep_id = str(at.query_params.get("deployment"))
    at.switch_page(DEPLOYMENT_PAGE)
    at.query_params["deployment"] = dep_id
    wait_for_success(at)
    return dep_id


def test_create_deploy_and_watch_to_success(dashboard, control_plane, sample_url, app_name):
    at = dashboard(control_plane.address).run()
    assert not at.exception
    assert "No apps yet" in texts(at)

    fill_create_form(at, app_name, sample_url)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    app = control_plane.apps.GetApp(app_service_pb2.GetAppRequest(name=app_name))
    assert app.repo_url == sample_url and app.port == 8080
    assert f"Created app {app_name}" in texts(at)
    assert f"### {app_name}" in texts(at)  # its card

    at.switch_page(APP_PAGE)
    at.query_params["app"] = app_name
    at.run()
    assert not at.exception, at.exception
    at.button(key="deploy").click().run()
    assert not at.exception, at.exception
    # The button queued a dashboard-triggered deployment and moved to its page.
    assert str(at.query_params.get("deployment")) == "1"
    assert "#1 · " + app_name in texts(at)

    # AppTest reruns the page it was last pointed at: point it at the deployment page for the polls.
    at.switch_page(DEPLOYMENT_PAGE)
    at.query_params["deployment"] = "1"
    wait_for_success(at)
    page = texts(at)
    assert "SUCCEEDED" in page, page
    log = "\n".join(c.value for c in at.code)
    assert any(line.startswith("Step 1/") for line in log.splitlines()), log
    # The log holds every line exactly once, however many slices it was read in.
    assert len([ln for ln in log.splitlines() if ln.startswith("Step 1/")]) == 1
    dep = control_plane.get("deployments/1")
    assert dep.trigger == 2  # DEPLOYMENT_TRIGGER_DASHBOARD

    # Rebuild & Deploy makes #2; rolling back runs #1's release again as #3, without a build.
    assert deploy_from_app_page(at, app_name, "rebuild") == "2"
    assert control_plane.get("deployments/2").rebuild
    at.switch_page(APP_PAGE)
    at.query_params.clear()
    at.query_params["app"] = app_name
    at.run()
    assert at.selectbox(key="rollback_pick").value == f"apps/{app_name}/deployments/1"
    at.button(key="rollback").click().run()
    assert not at.exception, at.exception
    assert str(at.query_params.get("deployment")) == "3"
    at.switch_page(DEPLOYMENT_PAGE)
    at.query_params["deployment"] = "3"
    wait_for_success(at)
    third = control_plane.get("deployments/3")
    assert third.source_deployment == f"apps/{app_name}/deployments/1"
    assert third.trigger == 5  # DEPLOYMENT_TRIGGER_ROLLBACK
    assert "rollback to #1" in texts(at)

    # The Apps page now shows it serving.
    at.switch_page("views/apps.py").run()
    assert not at.exception
    assert "running" in texts(at)


def test_bad_name_shows_the_api_message_inline(dashboard, control_plane, sample_url):
    at = dashboard(control_plane.address).run()
    fill_create_form(at, "Bad Name", sample_url)
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("app name" in e for e in errors), errors
    assert not control_plane.apps.ListApps(app_service_pb2.ListAppsRequest()).apps


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_control_plane_down_shows_a_banner_on_every_page(dashboard):
    address = f"127.0.0.1:{_closed_port()}"
    at = dashboard(address).run()
    for page in (None, APP_PAGE, DEPLOYMENT_PAGE, "views/servers.py"):
        if page:
            at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
        errors = [e.value for e in at.error]
        assert any(f"cannot reach the control plane at {address}" in e.lower() for e in errors), (page, errors)


def test_the_servers_page_says_when_an_offline_server_was_last_seen(dashboard, control_plane):
    from datetime import timedelta

    from serversinc.v1 import server_service_pb2 as spb

    from services.db.models import utcnow

    # Two servers whose agents do not answer: one answered 3 minutes ago, one never did.
    for name in ("gone", "new"):
        control_plane.servers.CreateServer(spb.CreateServerRequest(name=name, address=f"127.0.0.1:{_closed_port()}"))
    control_plane.platform.servers.seen(["gone"], utcnow() - timedelta(minutes=3, seconds=10))
    at = dashboard(control_plane.address).run()
    at.switch_page("views/servers.py").run()
    assert not at.exception, at.exception
    assert "Offline, last seen 3 min ago" in texts(at)
    assert "Offline, never seen" in texts(at)


def test_edit_sends_only_changed_fields_and_delete_needs_confirmation(dashboard, control_plane, sample_url, app_name):
    control_plane.create_app(app_name, sample_url, port=8080)
    at = dashboard(control_plane.address).run()
    assert f"### {app_name}" in texts(at)

    # Saving an untouched form sends nothing (the server would refuse an empty mask).
    at.button(key="edit_submit").click().run()
    assert not at.exception
    assert "Nothing changed." in [i.value for i in at.info]

    at.text_input(key=f"edit_{app_name}_branch").input("release")
    at.button(key="edit_submit").click().run()
    assert not at.exception, at.exception
    assert f"Updated {app_name}: branch." in texts(at)
    app = control_plane.apps.GetApp(app_service_pb2.GetAppRequest(name=app_name))
    assert (app.branch, app.port, app.repo_url) == ("release", 8080, sample_url)

    assert at.button(key="delete_submit").disabled  # not confirmed yet
    at.text_input(key="delete_confirm").input(app_name).run()
    at.button(key="delete_submit").click().run()
    assert not at.exception, at.exception
    assert f"Deleted app {app_name}" in texts(at)
    assert not control_plane.apps.ListApps(app_service_pb2.ListAppsRequest()).apps


def test_the_apps_page_flags_a_failed_deploy_beside_the_serving_release_and_shows_down(
        dashboard, control_plane, sample_repo, sample_url, app_name, docker_client):
    from serversinc.v1 import app_pb2

    from tests.integration.test_app_status import SERVE, wait_app
    from tests.support.sample_app import DOCKERFILE, commit_files

    control_plane.platform.health.period = 0.5
    control_plane.create_app(app_name, sample_url, health_timeout_seconds=2)
    first = control_plane.wait(control_plane.deploy(app_name).name)
    commit_files(sample_repo, {"Dockerfile": DOCKERFILE.replace(SERVE, 'CMD ["/bin/busybox","sleep","600"]')},
                 "never listens")
    control_plane.wait(control_plane.deploy(app_name).name)
    at = dashboard(control_plane.address).run()
    assert not at.exception, at.exception
    page = texts(at)
    assert "Deployment #2 failed; #1 still serves" in page, page
    assert ":green-badge[:material/check_circle: running]" in page, page

    docker_client.containers.get(first.container_id).kill()
    wait_app(control_plane, app_name, lambda a: a.status == app_pb2.APP_STATUS_DOWN)
    at.run()
    assert not at.exception, at.exception
    page = texts(at)
    assert ":red-badge[:material/heart_broken: down]" in page, page
    assert "Degraded or down" in [m.label for m in at.metric] and at.metric[2].value == "1"
