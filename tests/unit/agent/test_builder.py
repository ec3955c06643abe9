"""Pure parts of the builder: the line cap and the build-settings fingerprint."""

from __future__ import annotations

from agent.builder import TRUNCATED, LineSplitter, build_fingerprint, normalize_paths
from common.specs import BuildSpec


def _lines(chunks, limit=8):
    splitter = LineSplitter(limit)
    out = [line for chunk in chunks for line in splitter.feed(chunk)]
    return out + list(splitter.flush())


def test_lines_split_across_chunks():
    assert _lines(["ab", "c\nde", "f\n", "g"]) == ["abc", "def", "g"]


def test_a_long_line_is_cut_once_with_a_marker_and_the_rest_dropped():
    assert _lines(["0123456789", "more", "and more\nnext\n"]) == ["01234567" + TRUNCATED, "next"]
    assert _lines(["0123456789abc\nok\n"]) == ["01234567" + TRUNCATED, "ok"]


def test_the_pending_buffer_never_exceeds_the_limit():
    splitter = LineSplitter(8)
    out = []
    for _ in range(10_000):
        out += splitter.feed("x" * 7)
        assert len(splitter._pending) <= 8
    assert out == ["x" * 8 + TRUNCATED]


def test_fingerprint_changes_with_dockerfile_or_context_only():
    base = normalize_paths(BuildSpec("web", 1, "/r", "a" * 40, "Dockerfile", ""))
    same = normalize_paths(BuildSpec("web", 2, "/other", "b" * 40, "./Dockerfile", "."))
    assert build_fingerprint(base) == build_fingerprint(same)
    assert build_fingerprint(base) != build_fingerprint(
        normalize_paths(BuildSpec("web", 1, "/r", "a" * 40, "Dockerfile.prod", "")))
    assert build_fingerprint(base) != build_fingerprint(
        normalize_paths(BuildSpec("web", 1, "/r", "a" * 40, "Dockerfile", "sub")))
