"""Bearer authentication for a grpc.aio server: the mechanism the control plane and the agent share.

The shape is grpc's examples/python auth/token_based_auth_server.py, on asyncio: a
`grpc.aio.ServerInterceptor` reads `authorization: Bearer <credential>` from the call's metadata
and returns the method's handler with a check put in front of it, so a refused call aborts
before the servicer method runs. The check keeps the handler's kind (coroutine, async generator,
plain function or generator): async methods stay on the loop, synchronous ones still run in the
server's thread pool. Each server keeps its own policy in a subclass: which methods are open and
why a credential is refused (an API token lookup; the agent secret plus an address allowlist).
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
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


def checked(handler, check):
    """`handler` with `check(context)` run first; a (code, message) it returns aborts the call
    before the real method runs. Keeps the method's kind (see the module docstring). With no
    handler (an unknown method) the result is a unary coroutine that only checks."""
    inner = behavior(handler) if handler is not None else None
    if inner is None or inspect.iscoroutinefunction(inner):
        async def run(request, context):
            await _refuse_async(context, check(context))
            return await inner(request, context)
    elif inspect.isasyncgenfunction(inner):
        async def run(request, context):
            await _refuse_async(context, check(context))
            async for item in inner(request, context):
                yield item
    elif inspect.isgeneratorfunction(inner):
        def run(request, context):
            _refuse(context, check(context))
            yield from inner(request, context)
    else:
        def run(request, context):
            _refuse(context, check(context))
            return inner(request, context)
    return handler_like(handler, run)


async def _refuse_async(context, refusal) -> None:
    if refusal is not None:
        await context.abort(*refusal)


def _refuse(context, refusal) -> None:
    if refusal is not None:
        context.abort(*refusal)  # a synchronous handler's context aborts synchronously


class BearerInterceptor(grpc.aio.ServerInterceptor):
    """Lets `open_methods` through; for every other call asks `refusal(credential)` why the call
    is refused (UNAUTHENTICATED with that message) or None to let it in.

    `refusal` may block (a database lookup): it runs in the loop's default executor, never on
    the loop. `check` is what runs in front of the handler; a subclass extends it for checks
    that need the call's context (interceptors do not see the peer address, handlers do).
    An unknown method stays None (UNIMPLEMENTED) only for callers who are let in.
    """

    open_methods: frozenset[str] = frozenset()
    log: logging.Logger | None = None

    def refusal(self, credential: str) -> str | None:
        raise NotImplementedError

    async def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        handler = await continuation(handler_call_details)
        if method in self.open_methods:
            return handler
        credential = bearer(handler_call_details.invocation_metadata)
        refused = await asyncio.get_running_loop().run_in_executor(None, self.refusal, credential)
        if handler is None and refused is None or not self.needs_check(refused):
            return handler
        return checked(handler, lambda context: self.check(method, context, refused))

    def needs_check(self, refused: str | None) -> bool:
        """Whether a call needs `check` in front of its handler (a let-in call gets the real one)."""
        return refused is not None

    def check(self, method: str, context, refused: str | None):
        """(code, message) to abort the call with, or None to run it."""
        if refused is None:
            return None
        return self.denied(method, context, grpc.StatusCode.UNAUTHENTICATED, refused)

    def denied(self, method: str, context, code: grpc.StatusCode, message: str):
        if self.log is not None:
            self.log.warning("refused %s from %s: %s", method, context.peer(), message)
        return code, message
