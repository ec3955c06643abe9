"""OOM kills of managed containers, counted from Docker's event stream.

Why events and not `docker inspect`: inspect's `State.OOMKilled` says only that the container was
killed for memory at least once (Docker 20.10 keeps it true across restarts, measured), not how
often or when, and it stays false when the kernel kills a child process (a worker, a CGI script)
and the container goes on running. Docker sends an `oom` event in both cases. The watch follows
that stream from the agent's start (catching up on the events the daemon still buffers from the
last CATCH_UP_SECONDS) and keeps, per container, how many kills it saw and the last one's time;
inspect's flag (with the container's last exit as its time) is the floor for a kill the stream
no longer holds (after an agent restart on a busy engine).

Counts are held in memory only: they are what the agent saw, reported by ListContainers; the
control plane (services.health) turns them into app health and notifications.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from agent.docker_engine import ContainerRecord, DockerEngine, OomEvents

log = logging.getLogger(__name__)

CATCH_UP_SECONDS = 24 * 3600
RECONNECT_SECONDS = 1.0
MAX_CONTAINERS = 10_000  # containers remembered; the oldest entry goes first
# One allocation can raise several `oom` events of one container (measured: two, a moment apart,
# for one process killed); events closer than this to the last counted one are the same kill.
SAME_KILL_SECONDS = 2.0


@dataclass(frozen=True)
class OomKills:
    count: int = 0
    last: datetime | None = None


class OomWatch:
    def __init__(self, engine: DockerEngine) -> None:
        self.engine = engine
        self._lock = threading.Condition()
        self._kills: dict[str, tuple[int, float]] = {}  # container id -> (count, last unix time)
        self._seen: set[tuple[str, float]] = set()  # (id, time) already counted: reconnects repeat
        self._since = time.time() - CATCH_UP_SECONDS
        self._stream: OomEvents | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="oom-watch", daemon=True)

    def start(self) -> "OomWatch":
        self._thread.start()
        return self

    def close(self) -> None:
        self._stopped.set()
        with self._lock:
            stream = self._stream
        if stream is not None:
            stream.close()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                stream = self.engine.oom_events(self._since)
                with self._lock:
                    self._stream = stream
                if self._stopped.is_set():
                    stream.close()
                    return
                for container_id, at in stream:
                    self._count(container_id, at)
            except Exception as exc:  # the daemon restarted, the connection dropped: follow again
                if not self._stopped.is_set():
                    log.info("oom watch: event stream ended (%s); following again", exc)
            self._stopped.wait(RECONNECT_SECONDS)

    def _count(self, container_id: str, at: float) -> None:
        with self._lock:
            self._since = max(self._since, at - 1)  # a reconnect asks again from just before it
            if (container_id, at) in self._seen:
                return
            self._seen.add((container_id, at))
            count, last = self._kills.pop(container_id, (0, 0.0))
            if count and abs(at - last) < SAME_KILL_SECONDS:
                self._kills[container_id] = (count, last)  # the same kill: its first event's time
                return
            self._kills[container_id] = (count + 1, at)
            while len(self._kills) > MAX_CONTAINERS:
                gone = next(iter(self._kills))
                del self._kills[gone]
                self._seen = {key for key in self._seen if key[0] != gone}
            self._lock.notify_all()
        log.warning("container %s was OOM-killed", container_id[:12])

    def kills(self, record: ContainerRecord) -> OomKills:
        """The container's OOM kills as far as the agent knows."""
        with self._lock:
            count, last = self._kills.get(record.id, (0, 0.0))
        if count:
            return OomKills(count, datetime.fromtimestamp(last, timezone.utc))
        if record.oom_killed:
            return OomKills(1, record.finished_at)
        return OomKills()

    def wait_for(self, container_id: str, count: int, timeout: float) -> bool:
        """Until the stream counted `count` kills of the container (tests); False on timeout."""
        with self._lock:
            return self._lock.wait_for(
                lambda: self._kills.get(container_id, (0, 0.0))[0] >= count, timeout)
