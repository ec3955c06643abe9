"""Converters between run views (services.runs) and serversinc.v1 Run messages."""

from __future__ import annotations

from serversinc.v1 import app_service_pb2, run_pb2

from services.api.converters import ts
from services.api.names import deployment_name
from services.runs.service import RunOutputView, RunView, run_name


def run_to_pb(view: RunView) -> run_pb2.Run:
    return run_pb2.Run(
        name=run_name(view.app, view.id), id=view.id, app=view.app, command=view.command,
        state=run_pb2.RunState.Value(f"RUN_STATE_{view.state}"), exit_code=view.exit_code or 0,
        reason=view.reason, detach=view.detach, deployment=deployment_name(view.app, view.deployment_id),
        create_time=ts(view.created_at), end_time=ts(view.ended_at))


def run_event(item: RunView | str) -> app_service_pb2.RunAppCommandEvent:
    if isinstance(item, str):
        return app_service_pb2.RunAppCommandEvent(line=item)
    return app_service_pb2.RunAppCommandEvent(run=run_to_pb(item))


def output_to_pb(name: str, view: RunOutputView) -> app_service_pb2.RunOutput:
    return app_service_pb2.RunOutput(name=name, lines=view.lines, truncated=view.truncated)
