"""The one map from domain errors to gRPC status codes, with AIP-193 ErrorInfo details.

Every refusal carries a `google.rpc.ErrorInfo` (domain "serversinc.io") whose reason is the domain
error's own (APP_NOT_FOUND, DEPLOYMENT_NOT_CANCELLABLE, ...), so callers branch on the reason, not
the message; an INVALID_ARGUMENT that knows its field also carries a `google.rpc.BadRequest`.
Servicer methods are wrapped by `translate_errors`; anything unexpected becomes INTERNAL with an
id to find it in the log, never a stack trace to the caller. The server is grpc.aio: a method that
aborts on its own raises `grpc.aio.AbortError`, which passes through untouched.
"""

from __future__ import annotations

import functools
import inspect
import logging
import uuid

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from common.rules import RuleError
from services.core.errors import AlreadyExists, DomainError, FailedPrecondition, InvalidArgument, NotFound, Unavailable

log = logging.getLogger(__name__)
DOMAIN = "serversinc.io"

CODES = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
}


def status_for(err: DomainError) -> tuple[grpc.StatusCode, str, str, dict]:
    for cls in type(err).__mro__:
        if cls in CODES:
            return CODES[cls], err.message, err.reason, err.metadata
    return grpc.StatusCode.UNKNOWN, err.message, err.reason, err.metadata


def _packed(detail) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(detail)
    return packed


def status(code: grpc.StatusCode, message: str, reason: str, metadata: dict | None = None) -> grpc.Status:
    """The call's final status: the code, the message and the AIP-193 details."""
    metadata = metadata or {}
    details = [_packed(error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata))]
    if code == grpc.StatusCode.INVALID_ARGUMENT and metadata.get("field"):
        violation = error_details_pb2.BadRequest.FieldViolation(field=metadata["field"], description=message)
        details.append(_packed(error_details_pb2.BadRequest(field_violations=[violation])))
    packed = status_pb2.Status(code=getattr(code_pb2, code.name), message=message, details=details)
    return rpc_status.to_status(packed)


def _status_of(err: Exception, name: str) -> grpc.Status:
    if isinstance(err, RuleError):
        err = InvalidArgument(str(err))
    if isinstance(err, DomainError):
        return status(*status_for(err))
    incident = uuid.uuid4().hex[:12]
    log.exception("internal error %s in %s", incident, name)
    return status(grpc.StatusCode.INTERNAL, f"internal error (incident {incident} in the control-plane log)", "INTERNAL")


def _abort(context, final: grpc.Status) -> None:
    """Ends a synchronous handler's call (grpc.aio's thread-pool context has no abort_with_status)."""
    context.abort(final.code, final.details, final.trailing_metadata)


def translate_errors(method):
    """Wraps a unary, async unary, server-streaming or async server-streaming (grpc.aio) servicer method."""
    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def async_stream(self, request, context):
            try:
                async for item in method(self, request, context):
                    yield item
            except grpc.aio.AbortError:
                raise
            except Exception as err:  # noqa: BLE001 - translated, never leaked
                if context.cancelled():
                    return
                await context.abort_with_status(_status_of(err, method.__qualname__))

        return async_stream

    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def stream(self, request, context):
            try:
                yield from method(self, request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as err:  # noqa: BLE001 - translated, never leaked
                _abort(context, _status_of(err, method.__qualname__))

        return stream

    if inspect.iscoroutinefunction(method):

        @functools.wraps(method)
        async def async_unary(self, request, context):
            try:
                return await method(self, request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as err:  # noqa: BLE001 - translated, never leaked
                await context.abort_with_status(_status_of(err, method.__qualname__))

        return async_unary

    @functools.wraps(method)
    def unary(self, request, context):
        try:
            return method(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as err:  # noqa: BLE001
            _abort(context, _status_of(err, method.__qualname__))

    return unary
