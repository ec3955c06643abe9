"""Where an app runs: its servers in rollout order and how many replicas, and the rules on both.

Free of storage and transport, so the API, the pipeline and the tests read the same rules:
- an app names 1..MAX_SERVERS distinct servers, in rollout order; the first builds the image and
  is the app's `server` (apps.server_id == app_servers position 0);
- replicas is 1..MAX_REPLICAS and at least one per server: a server that runs none would be
  rolled out to for nothing, and would answer 503 at its front door;
- replicas are spread as evenly as the count allows, the first servers taking the remainder
  (`spread`, from common.placement), so 5 over (a, b) is a=3, b=2 — every process that counts
  containers per server, the clients included, must get the same answer;
- a deployment's `server_outcomes` say where its release ran; a serving deployment recorded
  before outcomes existed ran on the one server the app had (`succeeded_servers`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from common import placement as common_placement
from services.core import validation as v
from services.core.errors import InvalidArgument

MAX_REPLICAS = 64
MAX_SERVERS = 64

# A server's part of a rollout (Deployment.server_outcomes[i]["state"]).
PENDING, SUCCEEDED, FAILED, ROLLED_BACK, SKIPPED = "PENDING", "SUCCEEDED", "FAILED", "ROLLED_BACK", "SKIPPED"
OUTCOME_STATES = (PENDING, SUCCEEDED, FAILED, ROLLED_BACK, SKIPPED)
OUTCOME_KEYS = ("server", "state", "phase", "reason", "replicas")


def validate(servers: Sequence[str], replicas: int) -> tuple[tuple[str, ...], int]:
    """(servers, replicas) checked, or InvalidArgument saying what is allowed. Whether each
    server exists is the caller's to check (it needs the database)."""
    servers = tuple(servers)
    if not servers:
        raise InvalidArgument("an app needs at least one server", field="app.servers")
    if len(servers) > MAX_SERVERS:
        raise InvalidArgument(f"an app runs on at most {MAX_SERVERS} servers", field="app.servers")
    for name in servers:
        v.resource_name(name, "server")
    seen: set[str] = set()
    for name in servers:
        if name in seen:
            raise InvalidArgument(f"server {name!r} is named twice: name each server once", field="app.servers")
        seen.add(name)
    if isinstance(replicas, bool) or not isinstance(replicas, int) or not 1 <= replicas <= MAX_REPLICAS:
        raise InvalidArgument(f"replicas must be 1 to {MAX_REPLICAS}, not {replicas!r}", field="app.replicas")
    if replicas < len(servers):
        raise InvalidArgument(
            f"{replicas} replica{'s' if replicas != 1 else ''} cannot cover {len(servers)} servers: each server "
            f"runs at least one, so ask for at least {len(servers)} replicas or name fewer servers",
            field="app.replicas")
    return servers, replicas


def spread(servers: Sequence[str], replicas: int) -> dict[str, int]:
    """How many replicas each server runs, in rollout order (common.placement.spread, which the
    clients read too), after the checks above."""
    servers, replicas = validate(servers, replicas)
    return common_placement.spread(servers, replicas)


def outcome(server: str, state: str, *, phase: str = "", reason: str = "", replicas: int = 0) -> dict:
    """One server_outcomes entry, with every key present."""
    if state not in OUTCOME_STATES:
        raise ValueError(f"server outcome state {state!r} is not one of {', '.join(OUTCOME_STATES)}")
    return {"server": server, "state": state, "phase": phase, "reason": reason, "replicas": int(replicas)}


def normalized(outcomes: Iterable[dict]) -> list[dict]:
    """Outcomes as stored: each a fresh dict with exactly OUTCOME_KEYS (ValueError on a bad one)."""
    result = []
    for o in outcomes:
        unknown = set(o) - set(OUTCOME_KEYS)
        if unknown or not o.get("server"):
            raise ValueError(f"server outcome {o!r} needs a server and only {', '.join(OUTCOME_KEYS)}")
        result.append(outcome(str(o["server"]), str(o.get("state", "")), phase=str(o.get("phase") or ""),
                              reason=str(o.get("reason") or ""), replicas=int(o.get("replicas") or 0)))
    return result


def succeeded_servers(outcomes: Sequence[dict] | None, legacy_server: str) -> tuple[str, ...]:
    """The servers a serving deployment's release runs on: those whose outcome SUCCEEDED, in
    rollout order; a deployment without outcomes (recorded before they existed) ran on
    `legacy_server` alone."""
    if not outcomes:
        return (legacy_server,) if legacy_server else ()
    return tuple(o["server"] for o in outcomes if o.get("state") == SUCCEEDED)


def legacy_outcomes(server: str, replicas: int = 1) -> list[dict]:
    """What a serving deployment without outcomes did, written down before its app moves (the
    app's server changes, and the legacy rule above would then point at the new one)."""
    return [outcome(server, SUCCEEDED, phase="DONE", replicas=replicas)]
