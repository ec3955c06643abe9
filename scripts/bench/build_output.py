"""Benchmark: the agent's memory while a build prints 64 MiB on one line (no newline).

Runs the agent's Builder in this process against the real Docker engine and a local git
repository, samples this process's RSS while the build streams, and removes the image after.
Last line: JSON with `printed_mib`, `rss_before_mib`, `rss_peak_mib`, `rss_growth_mib`,
`longest_line`, `truncated_lines`, `seconds`.
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import _stack  # noqa: F401  (first: it keeps this folder's queue.py from shadowing the standard library's)

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # tests.support (sample app helpers) lives at the repository root

import docker  # noqa: E402

from agent.builder import TRUNCATED, Builder, BuildLine, BuildSucceeded  # noqa: E402
from agent.docker_engine import DockerEngine  # noqa: E402
from agent.repo_cache import RepoCache  # noqa: E402
from common.cancel import CancelToken  # noqa: E402
from common.specs import BuildSpec  # noqa: E402
from tests.conftest import cleanup_app  # noqa: E402
from tests.support.sample_app import commit_files, make_sample_repo, repo_url  # noqa: E402

MIB = 1 << 20
PRINTED = 64 * MIB


def rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    client = docker.from_env()
    app = f"bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_sample_repo(Path(tmp) / "repo")
        sha = commit_files(repo, {"Dockerfile": (
            'FROM scratch\nCOPY busybox /bin/busybox\n'
            f'RUN ["/bin/busybox","sh","-c","/bin/busybox head -c {PRINTED} /dev/zero | /bin/busybox tr \'\\\\0\' x"]\n'
        )}, "loud")
        builder = Builder(DockerEngine(client), RepoCache(Path(tmp) / "repos"))
        before = rss()
        peak = [before]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.01):
                peak[0] = max(peak[0], rss())
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        longest, truncated, ok = 0, 0, False
        try:
            for item in builder.build(BuildSpec(app, 1, repo_url(repo), sha), CancelToken()):
                if isinstance(item, BuildLine):
                    longest = max(longest, len(item.line))
                    truncated += item.line.endswith(TRUNCATED)
                ok = ok or isinstance(item, BuildSucceeded)
        finally:
            seconds = time.monotonic() - started
            done.set()
            sampler.join()
            cleanup_app(client, app)
    if not ok:
        raise SystemExit("the build failed")
    print(json.dumps({"printed_mib": PRINTED // MIB, "rss_before_mib": round(before / MIB, 1),
                      "rss_peak_mib": round(peak[0] / MIB, 1),
                      "rss_growth_mib": round((peak[0] - before) / MIB, 1),
                      "longest_line": longest, "truncated_lines": truncated, "seconds": round(seconds, 2)}))


if __name__ == "__main__":
    main()
