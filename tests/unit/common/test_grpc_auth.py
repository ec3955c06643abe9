"""common.grpc_auth: bearer parsing, and the interceptor's open methods, aborting handlers of the
same shape, and the guard hook, with a fake call context."""

from __future__ import annotations

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


class OneSecret(BearerInterceptor):
    open_methods = frozenset({"/open"})

    def refusal(self, credential):
        return None if same_secret(credential, "s3cret") else "wrong secret"


def _details(method, token=None):
    metadata = (("authorization", f"Bearer {token}"),) if token is not None else ()
    return SimpleNamespace(method=method, invocation_metadata=metadata)


def _continuation(ran):
    def serve(request, context):
        ran.append(request)
        return "served"
    handler = grpc.unary_stream_rpc_method_handler(serve, request_deserializer=bytes,
                                                   response_serializer=str.encode)
    return lambda details: handler


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
    ran = []
    cont = _continuation(ran)
    interceptor = OneSecret()
    real = cont(None)
    assert interceptor.intercept_service(cont, _details("/svc/M", "s3cret")) is real
    assert interceptor.intercept_service(cont, _details("/open")) is real


@pytest.mark.parametrize("token", [None, "", "nope", "s3cret2"])
def test_a_refused_call_aborts_in_a_handler_of_the_same_shape(token):
    ran = []
    cont = _continuation(ran)
    handler = OneSecret().intercept_service(cont, _details("/svc/M", token))
    real = cont(None)
    assert handler is not real
    assert (handler.request_streaming, handler.response_streaming) == (False, True)
    assert handler.request_deserializer is real.request_deserializer
    context = FakeContext()
    with pytest.raises(Aborted):
        handler.unary_stream(b"req", context)
    assert context.aborted == (grpc.StatusCode.UNAUTHENTICATED, "wrong secret")
    assert ran == []


def test_an_unknown_method_is_unimplemented_only_for_callers_let_in():
    interceptor = OneSecret()
    assert interceptor.intercept_service(lambda d: None, _details("/svc/Nope", "s3cret")) is None
    handler = interceptor.intercept_service(lambda d: None, _details("/svc/Nope", "bad"))
    context = FakeContext()
    with pytest.raises(Aborted):
        handler.unary_unary(b"", context)
    assert context.aborted[0] == grpc.StatusCode.UNAUTHENTICATED
