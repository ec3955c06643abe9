"""When the agent prunes by itself, and past which disk use it drops dangling build cache.

TUGBOAT_PRUNE_INTERVAL_SECONDS (default 600; 0 turns the schedule off: prunes then run after
each successful deploy and on request only) and TUGBOAT_PRUNE_DISK_THRESHOLD (bytes, or with a
unit: "20g"; default 20 GiB of images, containers and build cache together);
TUGBOAT_PRUNE_AFTER_DEPLOY=0 stops the prune after each successful deploy.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass


DEFAULT_INTERVAL_SECONDS = 600.0
_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)(?:i?b)?", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4}
DEFAULT_DISK_THRESHOLD_BYTES = 20 * 1024 ** 3


@dataclass(frozen=True)
class PruneSettings:
    interval_seconds: float = DEFAULT_INTERVAL_SECONDS
    disk_threshold_bytes: int = DEFAULT_DISK_THRESHOLD_BYTES
    # Prune an app right after each of its successful deploys (TUGBOAT_PRUNE_AFTER_DEPLOY=0: no;
    # tests that count what a prune removes turn it off).
    after_deploy: bool = True

    @classmethod
    def from_env(cls) -> "PruneSettings":
        interval = os.environ.get("TUGBOAT_PRUNE_INTERVAL_SECONDS", "").strip()
        threshold = os.environ.get("TUGBOAT_PRUNE_DISK_THRESHOLD", "").strip()
        try:
            seconds = float(interval) if interval else DEFAULT_INTERVAL_SECONDS
        except ValueError:
            raise ValueError(f"TUGBOAT_PRUNE_INTERVAL_SECONDS={interval!r} is not a number of seconds") from None
        if seconds < 0:
            raise ValueError("TUGBOAT_PRUNE_INTERVAL_SECONDS must be >= 0 (0: no schedule)")
        limit = DEFAULT_DISK_THRESHOLD_BYTES
        if threshold:
            limit = threshold_bytes(threshold)
        after = os.environ.get("TUGBOAT_PRUNE_AFTER_DEPLOY", "1").strip().lower() not in ("0", "off", "no", "false")
        return cls(seconds, limit, after)


def threshold_bytes(text: str) -> int:
    """"20g", "500m", "1.5GiB" or a number of bytes (units are powers of 1024)."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise ValueError(f"TUGBOAT_PRUNE_DISK_THRESHOLD={text!r}: use bytes or a size such as 20g")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])
