"""Rules for how an app's containers run on its server: memory and CPU limits, named volumes, the
release command and how many releases keep their image. The API checks them at create/update and
the agent again at every Deploy and Build (as with `common.rules`); the CLI parses "256m" and "0.5"
here too, so the three never disagree on what a limit means.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Iterable

from common.rules import RuleError, _shown

# Docker refuses a memory limit under 6 MiB.
MIN_MEMORY_BYTES = 6 * 1024 * 1024
MAX_MEMORY_BYTES = 1024 ** 4  # 1 TiB: anything above is a typo
MIN_CPU_MILLIS = 10
MAX_CPU_MILLIS = 256_000
MAX_VOLUMES = 16
VOLUME_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")
MAX_RELEASE_COMMAND_ARGS = 64
MAX_RELEASE_COMMAND_CHARS = 16 * 1024
DEFAULT_RETAIN_RELEASES = 5
MAX_RETAIN_RELEASES = 100
# Containers of one release on one server (the app's replicas are spread over its servers).
MAX_REPLICAS_PER_SERVER = 32

_MEMORY = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)(?:i?b)?", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4}
_CPUS = re.compile(r"[0-9]+(?:\.[0-9]{1,3})?")


def parse_memory(text: str) -> int:
    """ "256m", "1g", "1.5GiB", "67108864" -> bytes (units are powers of 1024, as Docker's)."""
    match = _MEMORY.fullmatch(text.strip())
    if not match:
        raise RuleError(f"memory {_shown(text)} is invalid: give a size such as 256m, 1g or 512MiB")
    return memory_bytes(int(float(match.group(1)) * _UNITS[match.group(2).lower()]))


def parse_cpus(text: str) -> int:
    """ "0.5" -> 500 thousandths of a CPU, "2" -> 2000 (at most three decimals)."""
    if not _CPUS.fullmatch(text.strip()):
        raise RuleError(f"cpus {_shown(text)} is invalid: give a number of CPUs such as 0.5 or 2")
    return cpu_millis(round(float(text) * 1000))


def memory_bytes(value: int) -> int:
    """0 (no limit) or a limit Docker accepts."""
    if value and not MIN_MEMORY_BYTES <= value <= MAX_MEMORY_BYTES:
        raise RuleError(f"memory limit {value} bytes is out of range: 0 (no limit) or 6 MiB to 1 TiB")
    return value


def cpu_millis(value: int) -> int:
    """0 (no limit) or 0.01 to 256 CPUs, in thousandths."""
    if value and not MIN_CPU_MILLIS <= value <= MAX_CPU_MILLIS:
        raise RuleError(f"CPU limit {value / 1000:g} is out of range: 0 (no limit) or 0.01 to 256 CPUs")
    return value


def volume_name(value: str) -> str:
    if not VOLUME_NAME.fullmatch(value or ""):
        raise RuleError(f"volume name {_shown(value)} is invalid: use 1-63 lowercase letters, digits, "
                        "'-', '_' and '.', starting with a letter or digit")
    return value


def volume_path(value: str) -> str:
    """An absolute path that is not '/', with no '..', '.' or empty segment and no ':'."""
    path = PurePosixPath(value or "")
    if (not value or not path.is_absolute() or value == "/" or ":" in value or "\0" in value
            or any(part in ("..", ".") for part in value.split("/")[1:]) or "//" in value
            or len(value) > 1024):
        raise RuleError(f"volume path {_shown(value)} is invalid: give an absolute path inside the "
                        "container such as /data (not '/', no '..' or ':')")
    return value.rstrip("/")


def volumes(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """[(name, path)] with each name and each path used once."""
    out = [(volume_name(n), volume_path(p)) for n, p in pairs]
    if len(out) > MAX_VOLUMES:
        raise RuleError(f"at most {MAX_VOLUMES} volumes per app")
    for index, what in ((0, "name"), (1, "path")):
        seen = [v[index] for v in out]
        twice = sorted({x for x in seen if seen.count(x) > 1})
        if twice:
            raise RuleError(f"volume {what} {', '.join(twice)} is given twice")
    return out


def parse_volume(text: str) -> tuple[str, str]:
    """ "data:/var/lib/app" -> ("data", "/var/lib/app")."""
    name_, sep, path = text.partition(":")
    if not sep:
        raise RuleError(f"volume {_shown(text)} is invalid: give NAME:/path, e.g. data:/data")
    return volume_name(name_), volume_path(path)


def release_command(argv: Iterable[str]) -> list[str]:
    """An argv (no shell: images may have none); empty means no release command."""
    out = list(argv)
    if len(out) > MAX_RELEASE_COMMAND_ARGS:
        raise RuleError(f"the release command has {len(out)} arguments: at most {MAX_RELEASE_COMMAND_ARGS}")
    if sum(len(a) for a in out) > MAX_RELEASE_COMMAND_CHARS:
        raise RuleError(f"the release command is longer than {MAX_RELEASE_COMMAND_CHARS} characters")
    if any("\0" in a for a in out):
        raise RuleError("the release command contains a NUL character")
    if out and not out[0]:
        raise RuleError("the release command's program (its first word) is empty")
    return out


def retain_releases(value: int) -> int:
    """0 means the default; otherwise 1 to 100 successful releases keep their image."""
    if value and not 1 <= value <= MAX_RETAIN_RELEASES:
        raise RuleError(f"retain releases {value} is out of range: 1 to {MAX_RETAIN_RELEASES} (0: the default, "
                        f"{DEFAULT_RETAIN_RELEASES})")
    return value or DEFAULT_RETAIN_RELEASES


def replicas(value: int) -> int:
    """Containers of a release on one server: 0 means unset (a control plane that does not send
    it), so 1; otherwise 1 to MAX_REPLICAS_PER_SERVER."""
    if value and not 1 <= value <= MAX_REPLICAS_PER_SERVER:
        raise RuleError(f"replicas {value} on one server is out of range: 1 to {MAX_REPLICAS_PER_SERVER}")
    return value or 1


def memory_text(value: int) -> str:
    """67108864 -> "64 MiB", 1610612736 -> "1.5 GiB": how a limit is shown in reasons and status."""
    for unit, size in (("GiB", 1024 ** 3), ("MiB", 1024 ** 2), ("KiB", 1024)):
        if value >= size:
            return f"{value / size:.4g} {unit}"
    return f"{value} B"


# One-off commands (`serversinc run`) and the release command: how long they may take before
# they are killed. The control plane adds the release command's to a deploy's deadline.
RUN_TIMEOUT_SECONDS = 3600
MAX_RUN_TIMEOUT_SECONDS = 7 * 24 * 3600
RELEASE_COMMAND_TIMEOUT_SECONDS = 600


def run_command(argv: Iterable[str]) -> list[str]:
    """The argv of `serversinc run NAME -- CMD ARGS…`: as a release command's, but not empty."""
    out = release_command(argv)
    if not out:
        raise RuleError("the command is empty: give it after --, e.g. serversinc run NAME -- /app migrate")
    return out


def run_timeout(seconds: int) -> int:
    """0 means the default (RUN_TIMEOUT_SECONDS); otherwise 1 s to a week."""
    if seconds and not 1 <= seconds <= MAX_RUN_TIMEOUT_SECONDS:
        raise RuleError(f"run timeout {seconds}s is out of range: 1 s to 7 days (0: the default, "
                        f"{RUN_TIMEOUT_SECONDS}s)")
    return seconds or RUN_TIMEOUT_SECONDS
