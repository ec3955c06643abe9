"""Resuming an app's log stream after it broke (a replica died): which lines were already shown.

StreamAppLogs has no resume token; every line carries the time Docker recorded for it. So a
resumed stream asks for a generous tail (`RESUME_TAIL`) and `LogCursor` drops the lines it already
showed (same time, container and text) and any line older than the oldest one it still remembers
(shown before, or older than the tail first asked for); what is left is new. Lines written while
no stream was open are recovered as long as the gap holds fewer than RESUME_TAIL. Until the first
resume nothing is filtered: lines of two containers need not arrive in time order.
Pure bookkeeping, no gRPC: the CLI drives it (cli/apps.py).
"""

from __future__ import annotations

import collections

from serversinc.v1 import app_service_pb2

# Lines asked for again on a resume, and remembered to recognise them: a failover's gap is a second or so.
RESUME_TAIL = 1000


def _key(line) -> tuple | None:
    """What identifies a line: (seconds, nanos, container, text); None when it has no time."""
    if not line.HasField("time"):
        return None
    return (line.time.seconds, line.time.nanos, line.container_id, line.text)


class LogCursor:
    """The lines of one app's log output shown so far (the last RESUME_TAIL of them)."""

    def __init__(self, remember: int = RESUME_TAIL) -> None:
        self._order: collections.deque = collections.deque()
        self._shown: set = set()
        self._remember = remember
        self.resumed = False

    @property
    def started(self) -> bool:
        return bool(self._order)

    def is_new(self, line) -> bool:
        """True for a line to show (and remembers it); False for one a resumed stream repeats."""
        key = _key(line)
        if key is None:
            return True
        if self.resumed and (key in self._shown or (self._order and key[:2] < self._order[0][:2])):
            return False
        self._order.append(key)
        self._shown.add(key)
        if len(self._order) > self._remember:
            self._shown.discard(self._order.popleft())
        return True

    def request(self, name: str, follow: bool, tail: int, *, deployment: str = "",
                since=None, server: str = "") -> app_service_pb2.StreamAppLogsRequest:
        """The request that starts the stream (the caller's tail) or, once lines were shown, resumes
        it; `deployment`, `since` (a datetime) and `server` are asked for again as they were."""
        if self.started:
            self.resumed = True
        request = app_service_pb2.StreamAppLogsRequest(
            name=name, follow=follow, tail=RESUME_TAIL if self.resumed else tail, deployment=deployment,
            server=server)
        if since is not None:
            request.since_time.FromDatetime(since)
        return request
