"""Turning API messages into what a person or a script reads: JSON, tables and short forms.

JSON output is the stable, scriptable form: proto field names (snake_case), enum values as their full
proto names, every field present. Tables are for people: enums shortened to "running", commits to
7 characters (client.names, the dashboard's words too), times to local wall-clock time.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from datetime import timezone
from typing import Iterable

from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from rich.console import Console
from rich.table import Table
from rich.text import Text

from client.names import deployment_id, enum_short, server_state_words, short_sha
from client.placement import outcome_words, replicas_words, servers_of

# Width used when stdout is not a terminal: wide enough that tables piped to a file or grep
# are not wrapped at rich's default of 80 columns.
PIPE_WIDTH = 200


def make_console(stderr: bool = False) -> Console:
    """A console that never interprets emoji codes or highlights, since it prints user and build text."""
    stream = sys.stderr if stderr else sys.stdout
    console = Console(file=stream, emoji=False, highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(file=stream, emoji=False, highlight=False, width=PIPE_WIDTH)
    return console


def to_dict(msg: Message) -> dict:
    """The message as a JSON-ready dict: snake_case keys, enum names, every field present.

    Fields with presence (timestamps, nested messages) that are unset come out as null, so a script
    can rely on the key existing.
    """
    data = json_format.MessageToDict(
        msg, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    for field in msg.DESCRIPTOR.fields:
        data.setdefault(field.name, None)
    return data


def dumps(value) -> str:
    return json.dumps(value, indent=2, sort_keys=False)


def print_json(value, file=None) -> None:
    """Plain json.dumps, not rich: scripts need bytes they can parse, with no styling or wrapping."""
    file = file or sys.stdout
    if isinstance(value, Message):
        value = to_dict(value)
    elif isinstance(value, list):
        value = [to_dict(v) if isinstance(v, Message) else v for v in value]
    file.write(dumps(value) + "\n")
    file.flush()


def fmt_time(ts: Timestamp | None, has: bool = True) -> str:
    """Local wall-clock time to the second, or '' when the timestamp is unset."""
    if ts is None or not has or (ts.seconds == 0 and ts.nanos == 0):
        return ""
    return ts.ToDatetime(tzinfo=timezone.utc).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def fmt_seconds(value: float) -> str:
    return f"{value:.1f}" if value else ""


def fmt_bytes(value: int) -> str:
    """67108864 -> "64 MiB" (powers of 1024, as the limits are given)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:g} {unit}" if unit == "B" else f"{value:.4g} {unit}"
        value /= 1024
    return ""


def _add_row(table: Table, *cells: str) -> None:
    """Cells as Text, never markup: names, URLs and failure reasons may contain [brackets]."""
    table.add_row(*(Text(c or "") for c in cells))


def _ts(msg: Message, field: str) -> str:
    return fmt_time(getattr(msg, field), msg.HasField(field))


def app_status_words(a) -> str:
    """The status word, then what qualifies it: a failed deployment beside the serving release
    ("running, deployment 12 failed") and a status the server has not confirmed lately ("stale")."""
    words = [enum_short(a, "status")]
    if a.latest_deployment_failed and a.current_deployment:
        words.append(f"deployment {deployment_id(a.latest_deployment)} failed")
    if a.health_stale:
        words.append("stale")
    return ", ".join(words)


def apps_table(apps: Iterable) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("NAME", "STATUS", "URL", "BRANCH", "SERVER", "COMMIT", "LAST DEPLOY"):
        table.add_column(col, overflow="fold")
    for a in apps:
        _add_row(
            table,
            a.name, app_status_words(a), a.url, a.branch, a.server,
            short_sha(a.current_commit), _ts(a, "last_deploy_time"),
        )
    return table


def certificate_words(c) -> str:
    """One domain's certificate in words: state, issuer, expiry, the next attempt, the last error."""
    from serversinc.v1 import app_pb2

    state = app_pb2.CertificateState.Name(c.state).removeprefix("CERTIFICATE_STATE_").lower()
    parts = [state]
    if c.issuer:
        parts.append(f"by {c.issuer}")
    if c.HasField("not_after"):
        parts.append(f"until {_ts(c, 'not_after')}")
    if c.HasField("next_attempt_time"):
        parts.append(f"next attempt {_ts(c, 'next_attempt_time')}")
    if c.last_error:
        parts.append(f"last error: {c.last_error}")
    return ", ".join(parts)


def certificates_table(certs) -> Table:
    table = Table(box=None, pad_edge=False)
    for column in ("DOMAIN", "STATE", "ISSUER", "EXPIRES", "NEXT ATTEMPT", "LAST ERROR"):
        table.add_column(column, overflow="fold")
    from serversinc.v1 import app_pb2

    for c in certs:
        table.add_row(c.domain, app_pb2.CertificateState.Name(c.state).removeprefix("CERTIFICATE_STATE_"),
                      c.issuer, _ts(c, "not_after"), _ts(c, "next_attempt_time"), c.last_error)
    return table


def app_detail_table(a) -> Table:
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    env = ", ".join(f"{k}={v}" for k, v in sorted(a.env.items()))
    commit = short_sha(a.current_commit)
    if a.current_commit_message:
        commit = f"{commit} {a.current_commit_message}".strip()
    rows = [
        ("name", a.name),
        ("status", app_status_words(a)),
        ("health", a.health_detail),
        ("url", a.url),
        ("maintenance", f"on: {a.maintenance_message or '(default page)'}" if a.maintenance else ""),
        ("repo", a.repo_url),
        ("branch", a.branch),
        ("server", a.server),
        ("servers", ", ".join(servers_of(a)) + " (rollout order)" if len(servers_of(a)) > 1 else ""),
        ("replicas", replicas_words(a)),
        ("port", str(a.port or "")),
        ("health path", a.health_path),
        ("dockerfile", a.dockerfile),
        ("context", a.context_dir),
        ("env", env),
        ("health timeout", f"{a.health_timeout_seconds}s" if a.health_timeout_seconds else ""),
        ("build timeout", f"{a.build_timeout_seconds}s" if a.build_timeout_seconds else ""),
        ("stop grace", f"{a.stop_grace_seconds}s" if a.stop_grace_seconds else ""),
        ("https redirect", "on" if a.https_redirect else ""),
        ("hsts", f"max-age={a.hsts_max_age_seconds}" if a.hsts_max_age_seconds else ""),
        ("memory", fmt_bytes(a.memory_limit_bytes) if a.memory_limit_bytes else ""),
        ("cpus", f"{a.cpu_limit_millis / 1000:g}" if a.cpu_limit_millis else ""),
        ("volumes", ", ".join(f"{v.name}:{v.path}" for v in a.volumes)
         + (" (exclusive: the old container stops first)" if a.exclusive_volumes and a.volumes else "")),
        ("release command", shlex.join(a.release_command)),
        ("retain", f"{a.retain_releases} releases" if a.retain_releases else ""),
        *((f"cert {c.domain}", certificate_words(c)) for c in a.certificates),
        ("deployment", a.current_deployment),
        ("latest deployment", f"{a.latest_deployment} (failed)" if a.latest_deployment_failed else a.latest_deployment),
        ("commit", commit),
        ("last deploy", _ts(a, "last_deploy_time")),
        ("created", _ts(a, "create_time")),
        ("updated", _ts(a, "update_time")),
    ]
    for k, v in rows:
        _add_row(table, k, v)
    return table


def deployments_table(deployments: Iterable) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("ID", "STATE", "PHASE", "TRIGGER", "COMMIT", "BUILD S", "DEPLOY S", "CREATED", "QUEUE", "FAILURE"):
        table.add_column(col, overflow="fold")
    for d in deployments:
        _add_row(
            table,
            deployment_id(d.name), enum_short(d, "state"), enum_short(d, "phase"), enum_short(d, "trigger"),
            short_sha(d.commit_sha),
            fmt_seconds(d.build_seconds), fmt_seconds(d.deploy_seconds), _ts(d, "create_time"),
            str(d.queue_position) if d.queue_position else "", d.failure_reason,
        )
    return table


def deployment_detail_table(d) -> Table:
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    commit = short_sha(d.commit_sha or d.requested_commit_sha)
    if d.commit_message:
        commit = f"{commit} {d.commit_message}".strip()
    rows = [
        ("deployment", d.name),
        ("app", d.app),
        ("state", enum_short(d, "state")),
        ("phase", enum_short(d, "phase")),
        ("trigger", enum_short(d, "trigger")),
        ("queue position", str(d.queue_position) if d.queue_position else ""),
        ("commit", commit),
        ("image", d.image),
        ("build", "skipped (image existed)" if d.build_skipped else
         (f"{d.build_seconds:.1f}s" if d.build_seconds else "")),
        ("deploy", f"{d.deploy_seconds:.1f}s" if d.deploy_seconds else ""),
        ("served nothing", f"{d.unserved_seconds:.1f}s (exclusive volumes)" if d.unserved_seconds else ""),
        ("url", d.url),
        ("failure phase", enum_short(d, "failure_phase")),
        ("failure reason", d.failure_reason),
        *((f"server {o.server}", outcome_words(o)) for o in d.server_outcomes),
        ("image digest", d.image_digest),
        ("rollback of", d.source_deployment),
        ("superseded by", d.superseded_by),
        ("created", _ts(d, "create_time")),
        ("started", _ts(d, "start_time")),
        ("ended", _ts(d, "end_time")),
        ("log", "pruned: only an app's last deployments keep their events" if d.log_pruned else ""),
    ]
    for k, v in rows:
        if v or k in ("state", "deployment", "app"):
            _add_row(table, k, v)
    return table


def servers_table(servers: Iterable) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("NAME", "ADDRESS", "STATE", "DOCKER", "AGENT", "RUNNING", "ERROR"):
        table.add_column(col, overflow="fold")
    for s in servers:
        _add_row(
            table,
            s.name, s.address, server_state_words(s), s.docker_version, s.agent_version,
            str(s.running_containers), s.error,
        )
    return table


def branches_table(branches: Iterable) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("BRANCH")
    table.add_column("COMMIT")
    for b in branches:
        _add_row(table, b.name, b.commit_sha)
    return table


def commit_table(c) -> Table:
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for k, v in (("sha", c.sha), ("message", c.message), ("author", c.author),
                 ("time", _ts(c, "time"))):
        if v or k == "sha":
            _add_row(table, k, v)
    return table
