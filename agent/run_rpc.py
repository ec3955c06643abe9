"""RunCommand and GetRun: requests checked and turned into agent.one_off calls, events into protobuf.

TugboatServicer's methods of the same names are one-line calls into here.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from tugboat.v1 import tugboat_pb2 as pb

from agent.docker_engine import EngineError
from agent.one_off import Exited, OneOffs, OneOffSpec, Output, RUN_ID, Started, UnknownRun
from common import rules, runtime_rules
from common.aio_server import in_thread
from common.cancel import CancelToken

log = logging.getLogger(__name__)


def run_id(value: str) -> str:
    if not RUN_ID.fullmatch(value or ""):
        raise rules.RuleError(f"run id {value!r} is invalid: 1-63 lowercase letters, digits and '-'")
    return value


def exit_message(exited: Exited, timeout_seconds: int = 0) -> pb.RunExit:
    return pb.RunExit(exit_code=exited.exit_code, timed_out=exited.timed_out,
                      oom_killed=exited.oom_killed, reason=exited.reason(timeout_seconds))


def spec_from(request: pb.RunCommandRequest) -> OneOffSpec:
    """RuleError (ValueError) for anything the agent would not run."""
    timeout = request.timeout.seconds + (1 if request.timeout.nanos else 0)
    return OneOffSpec(
        app=rules.app_name(request.app), run_id=run_id(request.run_id),
        image=request.image or "", command=tuple(runtime_rules.run_command(request.command)),
        env=rules.env(dict(request.env)),
        memory_bytes=runtime_rules.memory_bytes(request.resources.memory_bytes),
        cpu_millis=runtime_rules.cpu_millis(request.resources.cpu_millis),
        volumes=tuple(runtime_rules.volumes((v.name, v.path) for v in request.volumes)),
        timeout_seconds=runtime_rules.run_timeout(timeout), detach=request.detach)


async def run_command(one_offs: OneOffs, request, context) -> AsyncIterator[pb.RunCommandEvent]:
    try:
        spec = spec_from(request)
        if not spec.image:
            raise rules.RuleError("image is required")
    except ValueError as exc:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    token = CancelToken()
    # A cancelled call cancels the token (the container is killed), then closes the iterator
    # (the container is removed): see agent.one_off.
    async for event in in_thread(one_offs.run(spec, token), token.cancel):
        if isinstance(event, Started):
            yield pb.RunCommandEvent(started=pb.RunStarted(container_id=event.container_id,
                                                           container_name=event.name))
        elif isinstance(event, Output):
            yield pb.RunCommandEvent(line=event.line)
        else:
            yield pb.RunCommandEvent(exit=exit_message(event, spec.timeout_seconds))


def get_run(one_offs: OneOffs, request, context) -> pb.RunInfo:
    try:
        app, rid = rules.app_name(request.app), run_id(request.run_id)
    except ValueError as exc:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    try:
        status = one_offs.status(app, rid)
    except UnknownRun as exc:
        context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
    except EngineError as exc:
        log.exception("reading run %s of %s", rid, app)
        context.abort(grpc.StatusCode.INTERNAL, f"reading the run failed: {exc}")
    info = pb.RunInfo(run_id=status.run_id, running=status.running, lines=status.lines,
                      truncated=status.truncated)
    if status.exit is not None:
        info.exit.CopyFrom(exit_message(status.exit))
        info.exit.reason = status.reason or info.exit.reason
    if status.ended_at:
        ended = Timestamp()
        ended.FromNanoseconds(int(status.ended_at * 1e9))
        info.end_time.CopyFrom(ended)
    return info
