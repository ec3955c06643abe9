"""The short words people read for API values, shared so the CLI and the dashboard say the same:
'APP_STATUS_RUNNING' is "running", 'DEPLOYMENT_PHASE_STOP_OLD' is "stop-old", a commit is 7 characters."""

from __future__ import annotations

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
