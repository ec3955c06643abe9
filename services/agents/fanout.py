"""Asking several servers' agents at once: one deadline for a page of servers, not one per server.

The use cases that span several servers (an app on several servers, the servers page, the
metrics scrape) all ask this way, so a server that is down costs its one deadline beside the others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from services.agents.port import AgentError

S = TypeVar("S")

# How many agents one call asks at the same time.
PARALLEL = 16


def each(servers: Sequence[S], ask: Callable[[S], object]) -> list[tuple[S, object, AgentError | None]]:
    """(server, ask(server) or None, the AgentError or None) per server, in order, asked at once
    (at most PARALLEL at a time; one server is asked on the caller's thread)."""
    def one(server: S):
        try:
            return server, ask(server), None
        except AgentError as err:
            return server, None, err

    if len(servers) <= 1:
        return [one(s) for s in servers]
    with ThreadPoolExecutor(min(PARALLEL, len(servers)), thread_name_prefix="agents-fanout") as pool:
        return list(pool.map(one, servers))
