"""Following a deployment's events across Streamlit reruns, without losing or repeating a line.

A Streamlit page cannot hold a stream open for the whole deploy: each rerun (a fragment tick every
half second) reads a short slice of WatchDeployment starting after the last seq it kept, and the
`Feed` lives in `st.session_state` between ticks. The bookkeeping is the client library's
`WatchTracker` (pure, tested alone, the CLI's too): it ignores an event whose seq it has seen, so a replayed slice never
duplicates a line, and since every slice resumes at `last_seq` none is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from client.watch import ProgressInfo, WatchTracker

# How long one slice may wait for new events. Short enough that a tick never blocks the page long.
SLICE_SECONDS = 0.3


@dataclass
class Feed:
    name: str
    tracker: WatchTracker = field(default_factory=WatchTracker)
    lines: list[str] = field(default_factory=list)
    progress: ProgressInfo | None = None

    @property
    def last_seq(self) -> int:
        return self.tracker.last_seq

    @property
    def done(self) -> bool:
        return self.tracker.done

    def apply(self, event) -> None:
        update = self.tracker.apply(event)
        if update is None:
            return
        self.lines.extend(update.lines)
        if update.progress is not None:
            self.progress = update.progress

    def pull(self, client, timeout: float = SLICE_SECONDS) -> int:
        """Read the events after last_seq for at most `timeout` seconds; returns how many were new."""
        before = self.last_seq
        for event in client.watch(self.name, after_seq=self.last_seq, timeout=timeout):
            self.apply(event)
            if self.done:
                break
        return self.last_seq - before


def feed_for(state, name: str) -> Feed:
    """The feed kept in session state (`state` is st.session_state) for deployment `name`."""
    key = f"feed:{name}"
    if key not in state:
        state[key] = Feed(name)
    return state[key]
