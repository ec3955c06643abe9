"""Where StreamLogs reads from: the serving container, a release's live container, or the archive.

A release (deployment id) is read live while one of its containers is on the engine (Docker
keeps a crashed-and-restarted container's earlier output, so that is whole too); once its
containers were replaced or removed, from what agent.log_archive kept. `since` and `tail` mean
the same in both: the last `tail` lines of those recorded at or after `since`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing
from datetime import datetime

from agent.apps import AppAdmin, UnknownApp
from agent.docker_engine import ContainerRecord
from agent.log_archive import LogArchive
from agent.log_follow import LogReader

ARCHIVE_BATCH = 1000  # archived lines read per trip to a worker thread


class LogsNotKept(UnknownApp):
    """No container of that release is on the engine and no archived output of it is kept."""


def release_container(records: list[ContainerRecord], deployment_id: int,
                      serving: tuple[str, ...]) -> ContainerRecord | None:
    """The container to read a release's live output from: the serving one, else a running
    one, else the newest (records come newest first); None when none is on the engine."""
    mine = [r for r in records if r.deployment_id == deployment_id]
    for record in mine:
        if record.id in serving:
            return record
    running = [r for r in mine if r.running]
    return (running or mine or [None])[0]


class LogSource:
    def __init__(self, admin: AppAdmin, reader: LogReader, archive: LogArchive | None = None) -> None:
        self.admin = admin
        self.reader = reader
        self.archive = archive

    def _live(self, app: str, deployment_id: int) -> ContainerRecord | None:
        if not deployment_id:
            return self.admin.serving_container(app)  # UnknownApp when nothing of it is here
        return release_container(self.admin.engine.list(app), deployment_id,
                                 self.admin.router.serving(app))

    async def entries(self, app: str, *, deployment_id: int = 0, follow: bool = False,
                      tail: int = 0, since: datetime | None = None
                      ) -> AsyncIterator[tuple[datetime, str, str]]:
        """(time, text, container id) lines; follow keeps a live container's stream open (an
        archived release has no new lines: its stream ends after them)."""
        loop = asyncio.get_running_loop()
        record = await loop.run_in_executor(None, self._live, app, deployment_id)
        if record is not None:
            # aclosing: a follower that goes away while its line is being sent closes the
            # daemon connection now, not whenever the suspended generator is collected.
            async with aclosing(self.reader.lines(record.id, follow=follow, tail=tail,
                                                  since=since)) as lines:
                async for stamp, text in lines:
                    yield stamp, text, record.id
            return
        files = self.archive.files(app, deployment_id) if self.archive is not None else []
        if not files:
            raise LogsNotKept(
                f"no logs of deployment {deployment_id} of app {app!r} are kept on this server: it "
                "never ran here, or its archived output was pruned (the archive keeps the last "
                f"{self.archive.limits.releases if self.archive else 0} releases of each app)")
        lines = self.archive.lines(app, deployment_id, since=since, tail=tail)
        while batch := await loop.run_in_executor(None, _take, lines, ARCHIVE_BATCH):
            for item in batch:
                yield item


def _take(iterator, count: int) -> list:
    out = []
    for item in iterator:
        out.append(item)
        if len(out) >= count:
            break
    return out
