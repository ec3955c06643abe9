"""Bearer authentication for a gRPC server: the mechanism the control plane and the agent share.

The shape is grpc's examples/python auth/token_based_auth_server.py: a `grpc.ServerInterceptor`
reads `authorization: Bearer <credential>` from the call's metadata and, for a refused call,
returns a handler of the same shape that aborts, so a refused call never reaches a servicer.
Each server keeps its own policy in a subclass: which methods are open and why a credential is
refused (an API token lookup; the agent secret plus an address allowlist).
"""

from __future__ import annotations

import hmac
import logging

import grpc

_FACTORIES = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def bearer(metadata) -> str:
    """The credential of `authorization: Bearer <credential>`, or "" when there is none."""
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
            return value[len("Bearer "):].strip()
    return ""


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison, so the time a refusal takes says nothing about the secret."""
    return hmac.compare_digest(given.encode(), expected.encode())


def behavior(handler):
    """The function a method handler runs, whatever its streaming shape."""
    return (handler.unary_unary or handler.unary_stream or handler.stream_unary
            or handler.stream_stream)


def handler_like(handler, run):
    """A handler of the same shape and (de)serializers as `handler` (unary when None) running `run`."""
    if handler is None:
        return grpc.unary_unary_rpc_method_handler(run)
    factory = _FACTORIES[(handler.request_streaming, handler.response_streaming)]
    return factory(run, request_deserializer=handler.request_deserializer,
                   response_serializer=handler.response_serializer)


class BearerInterceptor(grpc.ServerInterceptor):
    """Lets `open_methods` through; for every other call asks `refusal(credential)` why the call
    is refused (UNAUTHENTICATED with that message) or None to let it in.

    `guard` builds the handler that runs; a subclass overrides it for checks that need the call's
    context (interceptors do not see the peer address, handlers do).
    """

    open_methods: frozenset[str] = frozenset()
    log: logging.Logger | None = None

    def refusal(self, credential: str) -> str | None:
        raise NotImplementedError

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        if method in self.open_methods:
            return continuation(handler_call_details)
        refused = self.refusal(bearer(handler_call_details.invocation_metadata))
        return self.guard(method, continuation(handler_call_details), refused)

    def guard(self, method: str, handler, refused: str | None):
        """The real handler when the call is let in (None, an unknown method, stays None:
        UNIMPLEMENTED only for callers who are let in), else one that aborts."""
        if refused is None:
            return handler
        return handler_like(handler, lambda request_or_iterator, context: self.abort(
            context, method, grpc.StatusCode.UNAUTHENTICATED, refused))

    def abort(self, context, method: str, code: grpc.StatusCode, message: str):
        if self.log is not None:
            self.log.warning("refused %s from %s: %s", method, context.peer(), message)
        context.abort(code, message)
