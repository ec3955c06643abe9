"""Front door pieces without HAProxy: run-dir layout, generations, settings, locks, back-off."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from agent.frontdoor import files_from, parse_args, service_pid, settings_from
from agent.frontdoor_files import (FrontDoorFiles, Settings, node_generation, run_dir_for,
                                   try_lock)
from agent.haproxy_process import MAX_BACKOFF, next_backoff
from agent.router import RouterError


def test_node_generation():
    assert node_generation("tugboat-7") == 7
    assert node_generation("tugboat-x") == -1
    assert node_generation("") == -1


def test_run_dir_is_under_the_state_dir_unless_the_socket_path_is_too_long(tmp_path):
    assert run_dir_for(tmp_path) == tmp_path / "haproxy"
    deep = tmp_path / ("d" * 120)
    short = run_dir_for(deep)
    assert short != deep / "haproxy" and len(str(short / "master.sock")) <= 100
    assert run_dir_for(deep) == short  # stable: the agent and the service agree


def test_settings_round_trip_and_a_missing_file(tmp_path):
    files = FrontDoorFiles.for_state(tmp_path)
    assert files.load_settings() is None
    files.save_settings(Settings("127.0.0.1", 8123, 4))
    assert files.load_settings() == Settings("127.0.0.1", 8123, 4)
    assert files.routes_file == tmp_path / "routes.json"


def test_every_render_has_a_new_generation_and_a_rejected_config_raises(tmp_path):
    files = FrontDoorFiles.for_state(tmp_path)
    settings = Settings("127.0.0.1", 8123)
    with files.render_lock():
        assert files.render(settings, shutil.which("true")) == 1
        assert files.render(settings, shutil.which("true")) == 2
    assert "node tugboat-2" in files.config.read_text()
    assert "bind 127.0.0.1:8123" in files.config.read_text()
    with files.render_lock(), pytest.raises(RouterError, match="rejected"):
        files.render(settings, shutil.which("false"))


def test_one_holder_per_lock_until_it_closes(tmp_path):
    files = FrontDoorFiles.for_state(tmp_path)
    first = try_lock(files.agent_lock)
    assert first is not None and try_lock(files.agent_lock) is None
    first.close()
    again = try_lock(files.agent_lock)
    assert again is not None
    again.close()


def _dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_no_service_pid_while_the_service_lock_is_free(tmp_path):
    files = FrontDoorFiles.for_state(tmp_path)
    assert service_pid(files) is None
    held = try_lock(files.service_lock)
    files.service_pid.write_text(f"{os.getpid()}\n")
    assert service_pid(files) == os.getpid()
    # Held, but the file still names a process that is gone (a killed service's pid, before
    # the new service rewrote it): not a pid to signal.
    files.service_pid.write_text(f"{_dead_pid()}\n")
    assert service_pid(files) == -1
    held.close()
    assert service_pid(files) is None


def test_back_off_doubles_up_to_a_cap():
    waits = [0.1]
    for _ in range(10):
        waits.append(next_backoff(waits[-1]))
    assert waits[:4] == [0.1, 0.2, 0.4, 0.8] and waits[-1] == MAX_BACKOFF


def test_cli_defaults_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TUGBOAT_FRONT_DOOR", "127.0.0.1:9100")
    monkeypatch.setenv("TUGBOAT_SERVER_MAXCONN", "8")
    args = parse_args(["--state-dir", str(tmp_path)])
    assert settings_from(args) == Settings("127.0.0.1", 9100, 8)
    assert files_from(args) == FrontDoorFiles.for_state(tmp_path)
    assert settings_from(parse_args(["--front-door", "9200", "--server-maxconn", "0"])) == \
        Settings("127.0.0.1", 9200, 0)
