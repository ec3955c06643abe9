"""`serversinc apps maintenance NAME on|off` through the real control plane, agent and front door:
503 with the page while on (the message HTML-escaped), the same containers running, the mode
stored and shown on the app; off serves the app again; an app never deployed is refused."""

from __future__ import annotations

import pytest
import requests
from urllib.parse import urlsplit

from tests.integration.conftest import control_plane, control_plane_cli, database_url, fetch, sample_repo, sample_url  # noqa: F401

pytestmark = pytest.mark.docker


def _front(url: str) -> requests.Response:
    parts = urlsplit(url)
    return requests.get(f"http://127.0.0.1:{parts.port}/", headers={"Host": parts.netloc}, timeout=5)


@pytest.fixture
def cli(control_plane, control_plane_cli):  # noqa: F811
    return control_plane_cli(control_plane.address)


def test_maintenance_on_and_off_through_the_cli(cli, control_plane, sample_url, app_name):  # noqa: F811
    cli("apps", "create", app_name, "--repo", sample_url, "--port", "8080")
    refused = cli("apps", "maintenance", app_name, "on", check=False)
    assert refused.returncode == 1 and "deploy it first" in refused.stderr
    cli("deploy", app_name, "--rebuild", "--watch")
    shown = cli.json("apps", "show", app_name, "--json")
    before = [(c.id, c.state) for c in control_plane.platform.app_containers(app_name)]
    assert "sample app v1" in fetch(shown["url"])

    on = cli.json("apps", "maintenance", app_name, "on", "--message", "Upgrading <db> & co", "--json")
    assert on["maintenance"] is True and on["maintenance_message"] == "Upgrading <db> & co"
    page = _front(shown["url"])
    assert page.status_code == 503 and "Upgrading &lt;db&gt; &amp; co" in page.text
    assert [(c.id, c.state) for c in control_plane.platform.app_containers(app_name)] == before
    assert "maintenance" in cli("apps", "show", app_name).stdout

    off = cli.json("apps", "maintenance", app_name, "off", "--json")
    assert not off.get("maintenance")
    assert "sample app v1" in fetch(shown["url"])
    assert [(c.id, c.state) for c in control_plane.platform.app_containers(app_name)] == before
