"""common.files.write_atomic: final mode from the start, atomic replace, nothing left on failure."""

from __future__ import annotations

import os
import stat

import pytest

from common import files
from common.files import write_atomic


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_writes_bytes_and_text_with_mode_0600_by_default(tmp_path):
    target = tmp_path / "deep" / "secret.env"
    write_atomic(target, "TOKEN=é\n")
    assert target.read_bytes() == "TOKEN=é\n".encode()
    assert _mode(target) == 0o600
    write_atomic(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"


def test_mode_is_the_one_asked_for_even_over_a_wider_file(tmp_path):
    target = tmp_path / "ca.pem"
    target.write_text("old")
    os.chmod(target, 0o666)
    write_atomic(target, "new", mode=0o644)
    assert _mode(target) == 0o644
    write_atomic(target, "newer")
    assert _mode(target) == 0o600


def test_replace_is_a_rename_so_an_open_reader_keeps_the_old_file(tmp_path):
    target = tmp_path / "routes.json"
    write_atomic(target, "old")
    with open(target) as reader:
        write_atomic(target, "new")
        assert reader.read() == "old"
    assert target.read_text() == "new"
    assert os.listdir(tmp_path) == ["routes.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "haproxy.cfg"
    write_atomic(target, "old")

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, "new")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["haproxy.cfg"]


def test_a_failed_rename_leaves_no_temp_file(tmp_path):
    target = tmp_path / "a-directory"
    target.mkdir()
    (target / "inside").write_text("x")
    with pytest.raises(OSError):
        write_atomic(target, "data")
    assert sorted(os.listdir(tmp_path)) == ["a-directory"]
