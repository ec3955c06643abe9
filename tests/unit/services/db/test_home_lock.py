"""The single-instance lock of a SQLite home: a second control plane on it refuses to start."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from services.db.home_lock import HomeLock, HomeLocked


def test_a_second_holder_is_refused_with_the_first_ones_pid(tmp_path):
    first = HomeLock.acquire(tmp_path)
    with pytest.raises(HomeLocked) as refused:
        HomeLock.acquire(tmp_path)
    assert refused.value.pid == os.getpid()
    assert str(os.getpid()) in str(refused.value)

    first.release()
    HomeLock.acquire(tmp_path).release()  # free again once the holder lets go


def test_a_lock_file_left_by_a_dead_process_does_not_block(tmp_path):
    (tmp_path / "api.lock").write_text("999999\n")
    HomeLock.acquire(tmp_path).release()


def test_serversinc_api_exits_nonzero_naming_the_running_one(tmp_path):
    held = HomeLock.acquire(tmp_path)
    try:
        env = {**os.environ, "SERVERSINC_HOME": str(tmp_path),
               "SERVERSINC_DATABASE_URL": f"sqlite:///{tmp_path / 'serversinc.db'}"}
        done = subprocess.run([sys.executable, "-m", "services.api.main", "--listen", "127.0.0.1:0"],
                              capture_output=True, text=True, env=env, timeout=60)
    finally:
        held.release()
    assert done.returncode == 1
    assert f"process {os.getpid()} already runs a control plane" in done.stderr
    assert not (tmp_path / "serversinc.db").exists()  # refused before touching the database
