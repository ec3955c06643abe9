"""The `serversinc` console script against a real control plane, agent, Docker and git."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.integration.conftest import fetch
from tests.support.sample_app import commit_version

CLI = Path(sys.executable).with_name("serversinc")


def cli(control_plane, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "SERVERSINC_API": control_plane.address, "SERVERSINC_TOKEN": ""}
    done = subprocess.run([str(CLI), *args], capture_output=True, text=True, env=env, timeout=120)
    if check:
        assert done.returncode == 0, done.stderr + done.stdout
    return done


def test_create_deploy_watch_show_and_list(control_plane, sample_repo, sample_url, app_name):
    cli(control_plane, "apps", "create", app_name, "--repo", sample_url, "--branch", "main",
        "--port", "8080", "--health-path", "/", "--env", "GREETING=hello=world")
    watched = cli(control_plane, "deploy", app_name, "--rebuild", "--watch")
    assert "Step 1/" in watched.stdout  # build log lines are shown live
    assert "succeeded" in watched.stdout.lower()

    shown = json.loads(cli(control_plane, "apps", "show", app_name, "--json").stdout)
    assert shown["name"] == app_name and shown["env"] == {"GREETING": "hello=world"}
    assert "sample app v1" in fetch(shown["url"])

    commit_version(sample_repo, "v2")
    cli(control_plane, "deploy", app_name, "--watch")
    shown = json.loads(cli(control_plane, "apps", "show", app_name, "--json").stdout)
    assert "sample app v2" in fetch(shown["url"])

    listed = json.loads(cli(control_plane, "deployments", "list", app_name, "--json").stdout)
    assert [d["state"] for d in listed] == ["DEPLOYMENT_STATE_SUCCEEDED"] * 2
    one = json.loads(cli(control_plane, "deployments", "show", str(listed[0]["id"]), "--json").stdout)
    assert one["commit_sha"] == sample_repo.head.commit.hexsha and one["image_id"].startswith("sha256:")
    apps = json.loads(cli(control_plane, "apps", "list", "--json").stdout)
    assert [a["name"] for a in apps] == [app_name]
    logs = cli(control_plane, "logs", app_name, "--tail", "50")
    assert logs.returncode == 0


def test_failed_deploy_exits_nonzero_and_says_why(control_plane, sample_url, app_name):
    cli(control_plane, "apps", "create", app_name, "--repo", sample_url, "--branch", "nope")
    done = cli(control_plane, "deploy", app_name, "--watch", check=False)
    assert done.returncode == 1
    assert "nope" in done.stdout + done.stderr


def test_bad_input_is_a_clear_error_without_traceback(control_plane, sample_url):
    done = cli(control_plane, "apps", "create", "Bad Name", "--repo", sample_url, check=False)
    assert done.returncode == 1
    assert "app name" in done.stderr and "Traceback" not in done.stderr
    done = cli(control_plane, "deploy", "missing", check=False)
    assert done.returncode == 1 and "not found" in done.stderr
    done = cli(control_plane, "apps", "create", "x", "--repo", sample_url, "--env", "NOEQUALS", check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_unreachable_control_plane_is_explained(tmp_path):
    env = {**os.environ, "SERVERSINC_API": "127.0.0.1:1", "SERVERSINC_TOKEN": ""}
    done = subprocess.run([str(CLI), "apps", "list"], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "127.0.0.1:1" in done.stderr
