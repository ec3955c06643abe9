"""The words people read for where an app runs and what each server did in a deployment, shared
so the CLI and the dashboard say the same: "4 (2 on a, 2 on b)", "b: failed at health: ..."."""

from __future__ import annotations

from common.placement import spread

from client.names import short_enum


def servers_of(app) -> list[str]:
    """The app's servers in rollout order (an older control plane sends only `server`)."""
    return list(app.servers) or ([app.server] if app.server else [])


def replicas_words(app) -> str:
    """'1', or '5 (3 on a, 2 on b)' for an app on several servers."""
    servers, replicas = servers_of(app), app.replicas or 1
    if len(servers) < 2:
        return str(replicas)
    try:
        counts = spread(servers, replicas)
    except ValueError:
        return str(replicas)
    return f"{replicas} ({', '.join(f'{n} on {name}' for name, n in counts.items())})"


def _enum_words(msg, field: str, prefix: str) -> str:
    value = msg.DESCRIPTOR.fields_by_name[field].enum_type.values_by_number.get(getattr(msg, field))
    if value is None:
        return str(getattr(msg, field))
    return short_enum(value.name.removeprefix(prefix))


def outcome_state(o) -> str:
    """'succeeded', 'rolled-back', ... for a ServerOutcome ('' when unset)."""
    return _enum_words(o, "state", "SERVER_OUTCOME_STATE_")


def outcome_words(o) -> str:
    """'failed at health: not healthy within 30s (2 replicas)' for one ServerOutcome."""
    words = outcome_state(o) or "unknown"
    if o.phase and words not in ("succeeded", "pending"):
        words += f" at {_enum_words(o, 'phase', 'DEPLOYMENT_PHASE_')}"
    if o.reason:
        words += f": {o.reason}"
    if o.replicas:
        words += f" ({o.replicas} replica{'s' if o.replicas != 1 else ''})"
    return words
