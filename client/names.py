"""The short words people read for API values, shared so the CLI and the dashboard say the same:
'APP_STATUS_RUNNING' is "running", 'DEPLOYMENT_PHASE_STOP_OLD' is "stop-old", a commit is 7 characters,
a time is "3 min ago"."""

from __future__ import annotations

from datetime import datetime, timezone

from google.protobuf.message import Message

ENUM_PREFIXES = ("APP_STATUS_", "DEPLOYMENT_STATE_", "DEPLOYMENT_PHASE_", "DEPLOYMENT_TRIGGER_",
                 "EVENT_KIND_", "SERVER_STATE_")


def short_enum(name: str) -> str:
    """'APP_STATUS_RUNNING' -> 'running', 'DEPLOYMENT_PHASE_STOP_OLD' -> 'stop-old', *_UNSPECIFIED -> ''."""
    for prefix in ENUM_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    if name == "UNSPECIFIED":
        return ""
    return name.lower().replace("_", "-")


def enum_short(msg: Message, field: str) -> str:
    """Short form of an enum field of msg, e.g. enum_short(app, "status") -> "running"."""
    fd = msg.DESCRIPTOR.fields_by_name[field]
    value = getattr(msg, field)
    ev = fd.enum_type.values_by_number.get(value)
    return short_enum(ev.name) if ev else str(value)


def enum_value_short(enum_type, value: int) -> str:
    """Short form of a raw enum number, given its generated enum wrapper (e.g. DeploymentPhase)."""
    try:
        return short_enum(enum_type.Name(value))
    except ValueError:
        return str(value)


def short_sha(sha: str) -> str:
    return sha[:7] if sha else ""


def deployment_id(name: str) -> str:
    """The number a person types, the last segment of a deployment's name: 'deployments/12' -> '12'."""
    return name.rsplit("/", 1)[-1] if name else ""


def ago(ts, now: datetime | None = None) -> str:
    """'3 min ago' for a Timestamp ('never' when unset): how people read a deploy time or when a
    server was last seen; the exact time goes in a tooltip, a table or --json."""
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return "never"
    seconds = ((now or datetime.now(timezone.utc)) - ts.ToDatetime(tzinfo=timezone.utc)).total_seconds()
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if unit == 'day' and n > 1 else ''} ago"
    return "just now"


def server_state_words(server, now: datetime | None = None) -> str:
    """A server's state as people read it: "online", or "offline, last seen 3 min ago" (or
    "offline, never seen": its agent has not answered once)."""
    state = enum_short(server, "state")
    if state != "offline":
        return state
    if not server.HasField("last_seen_time"):
        return "offline, never seen"
    return f"offline, last seen {ago(server.last_seen_time, now)}"
