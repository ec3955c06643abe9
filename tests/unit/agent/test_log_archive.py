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
