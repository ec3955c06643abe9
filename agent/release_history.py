"""Per-app record of the releases that took traffic, under the agent's state dir.

Written by the releaser at each switch (agent.releaser), read by the pruner: retention must know
the order releases served in and the N the app asked for, and neither is on the engine (an
image carries its commit, not when or whether it served). One small JSON file per app,
`<state_dir>/releases/<app>.json`, replaced atomically; an app with no file was never released
by this agent, and a prune leaves its images alone.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict
from pathlib import Path

from agent.retention import History, Release
from common import runtime_rules

# Entries kept per app: far more than any retention, so the order of the last N is always known.
MAX_ENTRIES = 200


class ReleaseHistory:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()

    def _path(self, app: str) -> Path:
        return self.root / f"{app}.json"

    def apps(self) -> list[str]:
        """Apps this agent released at least once."""
        if not self.root.is_dir():
            return []
        return sorted(p.stem for p in self.root.glob("*.json"))

    def get(self, app: str) -> History | None:
        try:
            data = json.loads(self._path(app).read_text())
        except (FileNotFoundError, ValueError):
            return None
        releases = tuple(Release(int(r["deployment_id"]), str(r["image_id"]),
                                 str(r.get("commit_sha", "")), float(r.get("time", 0)))
                         for r in data.get("releases", ()))
        return History(int(data.get("retain") or runtime_rules.DEFAULT_RETAIN_RELEASES), releases)

    def record(self, app: str, release: Release, retain: int) -> History:
        """Append a release that just took traffic (and the app's N, as of this deploy)."""
        with self._lock:
            current = self.get(app)
            releases = (current.releases if current else ()) + (release,)
            history = History(retain, releases[-MAX_ENTRIES:])
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = self._path(app).with_suffix(".tmp")
            tmp.write_text(json.dumps({"retain": history.retain,
                                       "releases": [asdict(r) for r in history.releases]}))
            os.replace(tmp, self._path(app))
            return history

    def forget(self, app: str) -> None:
        """The app was removed from this agent."""
        self._path(app).unlink(missing_ok=True)
