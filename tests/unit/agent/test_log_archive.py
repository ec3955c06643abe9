"""agent.log_archive's bound and reading, on files alone (the copy from Docker is tested on the
real engine in tests/agent/test_lasting_logs.py)."""

from __future__ import annotations

import os
from datetime import datetime, timezone

from agent.log_archive import ArchiveLimits, LogArchive, _keep_last

CID = "ab" * 32


def _file(archive: LogArchive, app: str, deployment_id: int, lines: list[str], *, at: int, cid: str = CID):
    folder = archive.root / app
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{deployment_id}-{cid}.log"
    path.write_text("".join(f"2026-12-01T20:00:{i:02d}.000000001Z {text}\n" for i, text in enumerate(lines)))
    os.utime(path, (at, at))
    return path


def test_prune_keeps_the_last_releases_then_the_byte_bound_oldest_first(tmp_path):
    archive = LogArchive(tmp_path, engine=None, limits=ArchiveLimits(max_bytes=10_000, releases=3))
    for n in range(1, 6):
        _file(archive, "web", n, [f"release {n}"], at=1000 + n)
    _file(archive, "other", 1, ["untouched"], at=1)
    removed = archive.prune("web")
    assert sorted(p.name.split("-")[0] for p in removed) == ["1", "2"]
    assert sorted(f.deployment_id for f in archive.files("web")) == [3, 4, 5]
    assert [f.deployment_id for f in archive.files("other")] == [1]

    size = archive.files("web")[0].size
    archive.limits = ArchiveLimits(max_bytes=2 * size, releases=3)
    archive.prune("web")
    assert sorted(f.deployment_id for f in archive.files("web")) == [4, 5]
    assert sum(f.size for f in archive.files("web")) <= 2 * size


def test_lines_merge_containers_in_time_order_with_since_and_tail(tmp_path):
    archive = LogArchive(tmp_path, engine=None)
    folder = archive.root / "web"
    folder.mkdir(parents=True)
    (folder / f"7-{'a' * 64}.log").write_text("2026-12-01T20:00:01.5Z a1\n2026-12-01T20:00:03.5Z a2\n")
    (folder / f"7-{'b' * 64}.log").write_text("2026-12-01T20:00:02.5Z b1\n2026-12-01T20:00:04.5Z b2\n")
    (folder / f"8-{'c' * 64}.log").write_text("2026-12-01T20:00:00.5Z other release\n")
    assert [t for _, t, _ in archive.lines("web", 7)] == ["a1", "b1", "a2", "b2"]
    since = datetime(2026, 12, 1, 20, 0, 2, 500000, tzinfo=timezone.utc)
    assert [t for _, t, _ in archive.lines("web", 7, since=since)] == ["b1", "a2", "b2"]
    assert [(t, c[0]) for _, t, c in archive.lines("web", 7, since=since, tail=2)] == [("a2", "a"), ("b2", "b")]
    assert list(archive.lines("web", 9)) == []


def test_an_oversized_copy_keeps_its_last_whole_lines(tmp_path):
    path = tmp_path / "x.part"
    path.write_bytes(b"".join(b"line %03d\n" % i for i in range(100)))  # 9 bytes a line
    _keep_last(path, 40)
    assert path.read_bytes() == b"line 096\nline 097\nline 098\nline 099\n"


def test_the_last_lines_of_a_file_are_read_backwards_across_blocks(tmp_path):
    from agent.log_archive import _last_lines

    path = tmp_path / "f.log"
    path.write_bytes(b"".join(b"line %05d\n" % i for i in range(1000)))
    with open(path, "rb") as handle:
        assert _last_lines(handle, 3, block=7) == [b"line 00997\n", b"line 00998\n", b"line 00999\n"]
        assert len(_last_lines(handle, 5000, block=64)) == 1000
        assert _last_lines(handle, 1, block=4096) == [b"line 00999\n"]


class _Engine:
    """Stands in for the Docker adapter: a container's output in blocks (pure logic of the copy)."""

    def __init__(self, blocks):
        self.blocks, self.tails = blocks, []

    def inspect(self, container_id):
        from types import SimpleNamespace
        return SimpleNamespace(app="web", deployment_id=3, id=container_id, name="web-3")

    def log_chunks(self, container_id, tail=0):
        self.tails.append(tail)
        yield from self.blocks


def test_a_copy_longer_than_the_bound_keeps_its_last_lines_and_asks_docker_for_a_tail_only(tmp_path):
    line = b"2026-12-01T20:00:00.000000001Z " + b"x" * 68 + b"\n"  # 100 bytes
    engine = _Engine([line * 10] * 50)  # 50,000 bytes in 50 blocks
    archive = LogArchive(tmp_path, engine, ArchiveLimits(max_bytes=1000, releases=5))
    path = archive.keep(CID)
    assert path.read_bytes() == line * 10
    assert engine.tails == [1000 // 32 + 1]


def test_archived_files_are_the_agents_only(tmp_path):
    archive = LogArchive(tmp_path / "logs", _Engine([b"2026-12-01T20:00:00.1Z hi\n"]))
    path = archive.keep(CID)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700


def test_a_copy_that_fails_leaves_nothing_and_does_not_raise(tmp_path):
    from agent.docker_engine import EngineError

    class Broken(_Engine):
        def log_chunks(self, container_id, tail=0):
            yield b"2026-12-01T20:00:00.1Z half\n"
            raise EngineError("connection dropped")

    archive = LogArchive(tmp_path, Broken([]))
    assert archive.keep(CID) is None
    assert list((tmp_path / "web").iterdir()) == []
