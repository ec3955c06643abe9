"""The `serversinc` console script against a real control plane, agent, Docker and git."""

from __future__ import annotations

import json

import pytest

from tests.integration.conftest import fetch
from tests.support.sample_app import commit_version


@pytest.fixture
def cli(control_plane, control_plane_cli):
    """The real console script, pointed at this test's control plane."""
    return control_plane_cli(control_plane.address)


def test_create_deploy_watch_show_and_list(cli, sample_repo, sample_url, app_name):
    cli("apps", "create", app_name, "--repo", sample_url, "--branch", "main",
        "--port", "8080", "--health-path", "/", "--env", "GREETING=hello=world")
    watched = cli("deploy", app_name, "--rebuild", "--watch")
    assert "Step 1/" in watched.stdout  # build log lines are shown live
    assert "succeeded" in watched.stdout.lower()

    shown = json.loads(cli("apps", "show", app_name, "--json").stdout)
    assert shown["name"] == app_name and shown["env"] == {"GREETING": "hello=world"}
    assert "sample app v1" in fetch(shown["url"])

    commit_version(sample_repo, "v2")
    cli("deploy", app_name, "--watch")
    shown = json.loads(cli("apps", "show", app_name, "--json").stdout)
    assert "sample app v2" in fetch(shown["url"])

    listed = json.loads(cli("deployments", "list", app_name, "--json").stdout)
    assert [d["state"] for d in listed] == ["DEPLOYMENT_STATE_SUCCEEDED"] * 2
    one = json.loads(cli("deployments", "show", str(listed[0]["id"]), "--json").stdout)
    assert one["commit_sha"] == sample_repo.head.commit.hexsha and one["image_id"].startswith("sha256:")
    apps = json.loads(cli("apps", "list", "--json").stdout)
    assert [a["name"] for a in apps] == [app_name]
    logs = cli("logs", app_name, "--tail", "50")
    assert logs.returncode == 0


def test_failed_deploy_exits_nonzero_and_says_why(cli, sample_url, app_name):
    cli("apps", "create", app_name, "--repo", sample_url, "--branch", "nope")
    done = cli("deploy", app_name, "--watch", check=False)
    assert done.returncode == 1
    assert "nope" in done.stdout + done.stderr


def test_bad_input_is_a_clear_error_without_traceback(cli, sample_url):
    done = cli("apps", "create", "Bad Name", "--repo", sample_url, check=False)
    assert done.returncode == 1
    assert "app name" in done.stderr and "Traceback" not in done.stderr
    done = cli("deploy", "missing", check=False)
    assert done.returncode == 1 and "not found" in done.stderr
    done = cli("apps", "create", "x", "--repo", sample_url, "--env", "NOEQUALS", check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_unreachable_control_plane_is_explained(control_plane_cli):
    done = control_plane_cli("127.0.0.1:1")("apps", "list", check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "127.0.0.1:1" in done.stderr


def test_git_and_server_lookups(cli, sample_repo, sample_url):
    resolved = cli.json("git", "resolve", sample_url, "--branch", "main", "--json")
    assert resolved["sha"] == sample_repo.head.commit.hexsha
    sample_repo.create_head("feature")
    branches = cli.json("git", "branches", sample_url, "--json")
    assert [b["name"] for b in branches] == ["feature", "main"]
    servers = cli.json("servers", "list", "--json")
    assert [(s["name"], s["state"]) for s in servers] == [("local", "SERVER_STATE_ONLINE")]
