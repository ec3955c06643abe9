"""API authentication: a server interceptor that requires a live API token on every call.

Callers send "authorization: Bearer <token>". Health checks and RegisterServer (which carries its
own one-time join token) are the only calls without one; reflection is behind the token too.
A refused call never reaches a servicer.
"""

from __future__ import annotations

import grpc

from services.security.api_tokens import ApiTokenService

OPEN_METHODS = frozenset({
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/serversinc.v1.ServerService/RegisterServer",
})


def bearer(metadata) -> str:
    for key, value in metadata or ():
        if key == "authorization" and value.startswith("Bearer "):
            return value[len("Bearer "):].strip()
    return ""


_HANDLER_FACTORIES = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def _refusal(handler, message: str):
    """A handler of the same shape as `handler` that aborts with UNAUTHENTICATED."""

    def deny(request_or_iterator, context):
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    if handler is None:
        return grpc.unary_unary_rpc_method_handler(deny)
    factory = _HANDLER_FACTORIES[(handler.request_streaming, handler.response_streaming)]
    return factory(deny, request_deserializer=handler.request_deserializer,
                   response_serializer=handler.response_serializer)


class TokenAuthInterceptor(grpc.ServerInterceptor):
    def __init__(self, tokens: ApiTokenService):
        self.tokens = tokens

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        if method in OPEN_METHODS:
            return continuation(handler_call_details)
        secret = bearer(handler_call_details.invocation_metadata)
        if not secret:
            message = "missing API token: send 'authorization: Bearer <token>' (see 'serversinc tokens create')"
        elif self.tokens.authenticate(secret) is None:
            message = "API token is unknown or revoked"
        else:
            return continuation(handler_call_details)
        return _refusal(continuation(handler_call_details), message)
