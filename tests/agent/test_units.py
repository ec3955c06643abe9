"""Docker-free checks of the small pure modules: paths, routes file, cancel tokens."""

from __future__ import annotations

import json

import pytest

from agent.operations import AlreadyRunning, Operations
from agent.repo_cache import safe_relative
from agent.router import DirectRouter, Target


@pytest.mark.parametrize("path,expected", [("", ""), (".", ""), ("./a/b/", "a/b"), ("a//b", "a/b")])
def test_safe_relative_normalizes(path, expected):
    assert safe_relative(path, "context_dir") == expected


@pytest.mark.parametrize("path", ["/abs", "..", "a/../..", "a/..", "\\x"])
def test_safe_relative_rejects_escapes(path):
    with pytest.raises(ValueError):
        safe_relative(path, "dockerfile")


def test_direct_router_persists_atomically(tmp_path):
    path = tmp_path / "routes.json"
    router = DirectRouter(path)
    assert router.current("web") is None
    assert router.switch("web", Target("abc", 40001)) == "http://127.0.0.1:40001"
    assert DirectRouter(path).current("web") == "abc"
    assert json.loads(path.read_text()) == {
        "version": 1, "apps": {"web": {"container_id": "abc", "url": "http://127.0.0.1:40001"}}}
    router.remove("web")
    assert DirectRouter(path).current("web") is None
    assert [p.name for p in tmp_path.iterdir()] == ["routes.json"]  # no temp files left


def test_operations_cancel_and_protect():
    ops = Operations()
    assert not ops.cancel(1)
    with ops.run(1) as token:
        with pytest.raises(AlreadyRunning):
            with ops.run(1):
                pass
        fired = []
        token.on_cancel(lambda: fired.append(True))
        assert ops.cancel(1) and token.cancelled and fired == [True]
    with ops.run(2) as token:
        assert token.protect()
        ops.cancel(2)
        assert not token.cancelled
    assert not ops.cancel(2)
