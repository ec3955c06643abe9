"""The dashboard's watch slice: a replica lost mid-slice ends the slice quietly (the next one resumes
elsewhere); a control plane lost before any event is the banner's ApiError."""

from types import SimpleNamespace

import grpc
import pytest
from serversinc.v1 import deployment_pb2

from client.errors import ApiError
from dashboard.api import Client


class Broken(grpc.RpcError):
    def __init__(self, code=grpc.StatusCode.UNAVAILABLE):
        self._code = code

    def code(self):
        return self._code

    def details(self):
        return "Socket closed"

    def trailing_metadata(self):
        return ()


class Stream:
    def __init__(self, events, error):
        self.events, self.error, self.cancelled = events, error, False

    def __iter__(self):
        yield from self.events
        if self.error is not None:
            raise self.error

    def cancel(self):
        self.cancelled = True


def client_with(stream):
    stub = SimpleNamespace(WatchDeployment=lambda request, timeout: stream)
    return Client(SimpleNamespace(address="h:1,h:2", deployments=stub))


def test_a_connection_lost_after_events_ends_the_slice():
    stream = Stream([deployment_pb2.DeploymentEvent(seq=1)], Broken())
    assert [e.seq for e in client_with(stream).watch("apps/a/deployments/1", 0, 1)] == [1]
    assert stream.cancelled


def test_a_connection_lost_before_any_event_is_an_error():
    with pytest.raises(ApiError) as raised:
        list(client_with(Stream([], Broken())).watch("apps/a/deployments/1", 0, 1))
    assert raised.value.unreachable and "any of h:1, h:2" in raised.value.hint


def test_the_deadline_ends_a_slice_and_other_errors_surface():
    assert list(client_with(Stream([], Broken(grpc.StatusCode.DEADLINE_EXCEEDED))).watch("n", 0, 1)) == []
    with pytest.raises(ApiError):
        list(client_with(Stream([deployment_pb2.DeploymentEvent(seq=1)], Broken(grpc.StatusCode.INTERNAL)))
             .watch("n", 0, 1))
