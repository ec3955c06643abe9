"""Pinned host ports: the candidate order, the range setting and the bind test (no Docker)."""

from __future__ import annotations

import socket

import pytest

from agent.docker_engine import DEFAULT_PORT_RANGE, candidate_ports, port_is_free, port_range


def test_candidates_skip_used_ports_wrap_around_and_are_bounded():
    assert list(candidate_ports((100, 104), {101, 103}, start=3)) == [104, 100, 102]
    assert list(candidate_ports((100, 104), {100, 101, 102, 103, 104}, start=0)) == []
    assert len(list(candidate_ports((1, 1000), set(), start=7, tries=5))) == 5


def test_port_range_setting():
    assert port_range("") == DEFAULT_PORT_RANGE
    assert port_range("30000-30010") == (30000, 30010)
    for bad in ("30000", "x-y", "100-200", "30010-30000", "60000-70000"):
        with pytest.raises(ValueError):
            port_range(bad)


def test_a_port_someone_listens_on_is_not_free():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not port_is_free(port)
