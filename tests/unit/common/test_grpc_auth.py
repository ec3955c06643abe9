"""common.grpc_auth: bearer parsing, and the asyncio interceptor's open methods, checked handlers
of the same shape and kind (sync or async), with fake call contexts."""

from __future__ import annotations

import asyncio
import inspect
from types import SimpleNamespace

import grpc
import pytest

from common.grpc_auth import BearerInterceptor, bearer, same_secret


class Aborted(Exception):
    pass


class FakeContext:
    def __init__(self):
        self.aborted = None

    def peer(self):
        return "ipv4:127.0.0.1:5000"

    def abort(self, code, message):
        self.aborted = (code, message)
        raise Aborted(message)


class AsyncContext(FakeContext):
    async def abort(self, code, message):
        FakeContext.abort(self, code, message)


class OneSecret(BearerInterceptor):
    open_methods = frozenset({"/open"})

    def refusal(self, credential):
        return None if same_secret(credential, "s3cret") else "wrong secret"


def _details(method, token=None):
    metadata = (("authorization", f"Bearer {token}"),) if token is not None else ()
    return SimpleNamespace(method=method, invocation_metadata=metadata)


def _continuation(ran, kind="sync"):
    def serve(request, context):
        ran.append(request)
        yield "served"

    async def serve_async(request, context):
        ran.append(request)
        yield "served"

    handler = grpc.unary_stream_rpc_method_handler(serve if kind == "sync" else serve_async,
                                                   request_deserializer=bytes,
                                                   response_serializer=str.encode)

    async def continuation(details):
        return handler
    continuation.handler = handler
    return continuation


def _intercept(interceptor, continuation, details):
    return asyncio.run(interceptor.intercept_service(continuation, details))


async def _none(details):
    return None


async def _drain(stream):
    return [item async for item in stream]


def test_bearer_reads_only_an_authorization_bearer_value():
    assert bearer((("x", "y"), ("authorization", "Bearer  abc "))) == "abc"
    assert bearer((("authorization", "Basic abc"),)) == ""
    assert bearer((("authorization", b"Bearer abc"),)) == ""
    assert bearer(None) == ""


def test_same_secret():
    assert same_secret("a" * 40, "a" * 40)
    assert not same_secret("a" * 40, "a" * 39 + "b")
    assert not same_secret("", "a")


def test_a_let_in_call_and_an_open_method_get_the_real_handler():
    cont = _continuation([])
    interceptor = OneSecret()
    assert _intercept(interceptor, cont, _details("/svc/M", "s3cret")) is cont.handler
    assert _intercept(interceptor, cont, _details("/open")) is cont.handler


@pytest.mark.parametrize("token", [None, "", "nope", "s3cret2"])
def test_a_refused_sync_call_aborts_in_a_sync_handler_of_the_same_shape(token):
    ran = []
    cont = _continuation(ran)
    handler = _intercept(OneSecret(), cont, _details("/svc/M", token))
    assert handler is not cont.handler
    assert (handler.request_streaming, handler.response_streaming) == (False, True)
    assert handler.request_deserializer is cont.handler.request_deserializer
    assert inspect.isgeneratorfunction(handler.unary_stream)  # still runs in the thread pool
    context = FakeContext()
    with pytest.raises(Aborted):
        list(handler.unary_stream(b"req", context))
    assert context.aborted == (grpc.StatusCode.UNAUTHENTICATED, "wrong secret")
    assert ran == []


def test_a_refused_async_stream_aborts_on_the_loop_and_a_let_in_one_runs():
    ran = []
    cont = _continuation(ran, kind="async")
    handler = _intercept(OneSecret(), cont, _details("/svc/M", "nope"))
    assert inspect.isasyncgenfunction(handler.unary_stream)  # stays a coroutine: holds no thread
    context = AsyncContext()
    with pytest.raises(Aborted):
        asyncio.run(_drain(handler.unary_stream(b"req", context)))
    assert context.aborted[0] == grpc.StatusCode.UNAUTHENTICATED and ran == []


def test_a_subclass_check_runs_before_a_let_in_method():
    class NoPeers(OneSecret):
        def needs_check(self, refused):
            return True

        def check(self, method, context, refused):
            return self.denied(method, context, grpc.StatusCode.PERMISSION_DENIED, "not you")

    ran = []
    handler = _intercept(NoPeers(), _continuation(ran, kind="async"), _details("/svc/M", "s3cret"))
    context = AsyncContext()
    with pytest.raises(Aborted):
        asyncio.run(_drain(handler.unary_stream(b"req", context)))
    assert context.aborted == (grpc.StatusCode.PERMISSION_DENIED, "not you") and ran == []


def test_an_unknown_method_is_unimplemented_only_for_callers_let_in():
    interceptor = OneSecret()
    assert _intercept(interceptor, _none, _details("/svc/Nope", "s3cret")) is None
    handler = _intercept(interceptor, _none, _details("/svc/Nope", "bad"))
    context = AsyncContext()
    with pytest.raises(Aborted):
        asyncio.run(handler.unary_unary(b"", context))
    assert context.aborted[0] == grpc.StatusCode.UNAUTHENTICATED
