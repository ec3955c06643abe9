"""What an OOM kill is called, in a deploy's failure reason and a build's: one wording for both.

The limits themselves are applied by the Docker adapter (agent.docker_engine.container_limits and
build_limits); this module only says, for people, why the kernel killed a process.
"""

from __future__ import annotations

from common.runtime_rules import memory_text


def oom_reason(memory_bytes: int) -> str:
    """ "OOM-killed: it passed its memory limit of 32 MiB" (or the server ran out, with no limit)."""
    if memory_bytes:
        return f"OOM-killed: it passed its memory limit of {memory_text(memory_bytes)}"
    return "OOM-killed: the server ran out of memory (the app has no memory limit)"


def build_oom_reason(memory_bytes: int, error: str) -> str:
    """A build step killed for memory: the step's own error, then why, in plain words."""
    return (f"{error} — out of memory: the build step was OOM-killed; it passed the app's "
            f"build memory limit of {memory_text(memory_bytes)}" if memory_bytes else
            f"{error} — out of memory: the build step was OOM-killed (no memory limit set; the "
            "server ran out)")
