"""Docker-free checks of the small pure modules: paths, cancel tokens."""

from __future__ import annotations

import pytest

from agent.operations import AlreadyRunning, Operations
from agent.repo_cache import safe_relative


@pytest.mark.parametrize("path,expected", [("", ""), (".", ""), ("./a/b/", "a/b"), ("a//b", "a/b")])
def test_safe_relative_normalizes(path, expected):
    assert safe_relative(path, "context_dir") == expected


@pytest.mark.parametrize("path", ["/abs", "..", "a/../..", "a/..", "\\x"])
def test_safe_relative_rejects_escapes(path):
    with pytest.raises(ValueError):
        safe_relative(path, "dockerfile")


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
