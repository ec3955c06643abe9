"""The per-app operations on an app that runs on two real hosts (servers a and b): its containers
listed from both, maintenance switched on both front doors (and back on a when b fails), its
output read from both, through the API and the `serversinc` console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from serversinc.v1 import app_service_pb2

from client.errors import error_info
from tests.fleet.test_hosts import deployed, unique, via_front_door
from tests.support.sample_app import commit_files, make_sample_repo, repo_url

pytestmark = pytest.mark.docker

# The sample app, saying a line when it starts, so each server's container has output to read.
LOUD_DOCKERFILE = """FROM scratch
COPY busybox /bin/busybox
COPY index.html /www/index.html
EXPOSE 8080
CMD ["/bin/busybox","sh","-c","echo hello from the app; exec /bin/busybox httpd -f -p 8080 -h /www"]
"""


def cli(fleet, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("serversinc")
    done = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "SERVERSINC_API": fleet.cp.address})
    if check:
        assert done.returncode == 0, done.stderr + done.stdout
    return done


def containers(fleet, app: str) -> app_service_pb2.ListAppContainersResponse:
    return fleet.cp.apps.ListAppContainers(app_service_pb2.ListAppContainersRequest(parent=f"apps/{app}"))


def maintenance(fleet, app: str, on: bool, message: str = ""):
    return fleet.cp.apps.SetAppMaintenance(app_service_pb2.SetAppMaintenanceRequest(
        name=f"apps/{app}", enabled=on, message=message))


def app_on_both(fleet, tmp_path):
    app = unique()
    repo = make_sample_repo(tmp_path / "repo", f"v1-{app}")
    commit_files(repo, {"Dockerfile": LOUD_DOCKERFILE}, "say hello on start")
    fleet.app(app, repo_url(repo), "a", servers=["a", "b"])
    return app, deployed(fleet, app)


def test_containers_maintenance_and_logs_reach_both_servers(fleet, tmp_path):
    a, b = fleet.servers["a"], fleet.servers["b"]
    app, dep = app_on_both(fleet, tmp_path)

    listed = containers(fleet, app)
    assert sorted(c.server for c in listed.containers) == ["a", "b"] and not listed.unreachable
    assert {c.deployment for c in listed.containers} == {dep.name}
    for server, host in (("a", a), ("b", b)):
        with host.docker() as engine:
            assert {c.id for c in listed.containers if c.server == server} == {
                c.id for c in engine.containers.list(filters={"label": f"io.serversinc.app={app}"})}

    shown = json.loads(cli(fleet, "apps", "containers", app, "--json").stdout)
    assert sorted((c["server"], c["id"]) for c in shown) == sorted((c.server, c.id) for c in listed.containers)
    table = cli(fleet, "apps", "containers", app).stdout
    assert "SERVER" in table and all(c.id[:12] in table for c in listed.containers), table

    maintenance(fleet, app, True, "back soon")
    for host in (a, b):
        page = via_front_door(host, dep.url)
        assert page.status_code == 503 and "back soon" in page.text
    assert fleet.cp.platform.apps.get(app).maintenance
    maintenance(fleet, app, False)
    for host in (a, b):
        page = via_front_door(host, dep.url)
        assert page.status_code == 200 and f"v1-{app}" in page.text

    # Each line names its server and container; both servers' containers said hello.
    out = cli(fleet, "logs", app, "--tail", "20").stdout.splitlines()
    ids = {c.server: c.id[:12] for c in listed.containers}
    assert f"a/{ids['a']}| hello from the app" in out and f"b/{ids['b']}| hello from the app" in out, out
    only_b = cli(fleet, "logs", app, "--server", "b").stdout.splitlines()
    assert only_b and all(line == "hello from the app" for line in only_b), only_b


def test_a_server_that_fails_leaves_maintenance_unchanged_everywhere(fleet, tmp_path):
    a, b = fleet.servers["a"], fleet.servers["b"]
    app, dep = app_on_both(fleet, tmp_path)
    b.stop_agent()  # its front door keeps serving the app

    with pytest.raises(grpc.RpcError) as refused:
        maintenance(fleet, app, True, "back soon")
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_info(refused.value).reason == "SERVER_UNREACHABLE"
    assert "server 'b'" in refused.value.details() and "switched back on 'a'" in refused.value.details()
    assert via_front_door(a, dep.url).status_code == 200  # a switched back
    assert not fleet.cp.platform.apps.get(app).maintenance

    # The containers of a are listed, b is named as not answering.
    listed = containers(fleet, app)
    assert {c.server for c in listed.containers} == {"a"}
    assert len(listed.unreachable) == 1 and listed.unreachable[0].startswith("b: ")
    partial = cli(fleet, "apps", "containers", app, "--json", check=False)
    assert partial.returncode == 1 and "server b: " in partial.stderr, partial.stderr
    assert {c["server"] for c in json.loads(partial.stdout)} == {"a"}
