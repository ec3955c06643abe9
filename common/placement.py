"""How an app's replicas are spread over its servers: the one rule the control plane (which
starts them), the agents' callers and the clients (which show it) all read.

As even as the count allows, in rollout order, the first servers taking one more each while the
remainder lasts: 5 over (a, b) is a=3, b=2. Every server runs at least one, so replicas is at
least the number of servers (services.apps.placement refuses less with a message).
"""

from __future__ import annotations

from collections.abc import Sequence


def spread(servers: Sequence[str], replicas: int) -> dict[str, int]:
    """{server: replicas on it}, in rollout order; ValueError when some server would get none."""
    if not servers or replicas < len(servers):
        raise ValueError(f"{replicas} replicas cannot cover {len(servers)} servers: each runs at least one")
    base, extra = divmod(replicas, len(servers))
    return {name: base + (1 if i < extra else 0) for i, name in enumerate(servers)}
