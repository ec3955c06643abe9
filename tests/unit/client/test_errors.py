"""A failed call as people read it: the server's words, a hint for what they can fix, the ErrorInfo reason."""

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from client.errors import ApiError, error_info


class FakeError(grpc.RpcError):
    """An RpcError as grpc hands it over, with the grpc-status-details-bin trailer when given details."""

    def __init__(self, code, details, info=None):
        self._code, self._details = code, details
        self._trailers = ()
        if info is not None:
            packed = any_pb2.Any()
            packed.Pack(info)
            status = status_pb2.Status(code=code.value[0], message=details, details=[packed])
            self._trailers = (("grpc-status-details-bin", status.SerializeToString()),)

    def code(self):
        return self._code

    def details(self):
        return self._details

    def trailing_metadata(self):
        return self._trailers


def test_reason_and_metadata_come_from_error_info():
    info = error_details_pb2.ErrorInfo(reason="APP_NOT_FOUND", domain="serversinc.io", metadata={"app": "web"})
    err = FakeError(grpc.StatusCode.NOT_FOUND, "app web not found", info)
    assert error_info(err).metadata["app"] == "web"
    api = ApiError.from_rpc(err, "h:1")
    assert (api.code, api.details, api.reason) == (grpc.StatusCode.NOT_FOUND, "app web not found", "APP_NOT_FOUND")
    # Nothing the caller can fix locally: the message is the server's own.
    assert api.hint == "" and api.message == "app web not found" and not api.unreachable


def test_no_details_means_no_reason():
    api = ApiError.from_rpc(FakeError(grpc.StatusCode.INVALID_ARGUMENT, "bad name"), "h:1")
    assert api.reason == "" and api.message == "bad name"


def test_unreadable_details_are_not_an_error():
    class Garbled(FakeError):
        def trailing_metadata(self):
            return (("grpc-status-details-bin", b"\xff not a status"),)

    err = Garbled(grpc.StatusCode.INTERNAL, "boom")
    assert error_info(err) is None and ApiError.from_rpc(err, "h:1").reason == ""


def test_a_down_control_plane_says_where_and_what_to_do():
    api = ApiError.from_rpc(FakeError(grpc.StatusCode.UNAVAILABLE, "connection refused"), "10.0.0.1:50051")
    assert api.unreachable
    assert "cannot reach the control plane at 10.0.0.1:50051" in api.hint
    assert "SERVERSINC_API" in api.hint
    assert api.message.startswith("Cannot reach the control plane at 10.0.0.1:50051")
    assert "connection refused" in api.message


def test_a_refused_token_and_a_timeout_have_their_hints():
    refused = ApiError.from_rpc(FakeError(grpc.StatusCode.UNAUTHENTICATED, "bad token"), "h:1")
    assert "SERVERSINC_TOKEN" in refused.hint and "api-token" in refused.hint
    late = ApiError.from_rpc(FakeError(grpc.StatusCode.DEADLINE_EXCEEDED, ""), "h:1")
    assert late.details == "DEADLINE_EXCEEDED" and "did not answer in time" in late.hint


def test_a_list_of_replicas_is_named_in_the_hint():
    api = ApiError.from_rpc(FakeError(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses"),
                            "10.0.0.1:50051,10.0.0.2:50051")
    assert "at any of 10.0.0.1:50051, 10.0.0.2:50051" in api.hint


def test_an_unavailable_sent_by_the_control_plane_is_not_a_lost_connection():
    info = error_details_pb2.ErrorInfo(reason="AGENT_UNREACHABLE", domain="serversinc.io")
    api = ApiError.from_rpc(FakeError(grpc.StatusCode.UNAVAILABLE, "agent local is not answering", info), "h:1")
    assert not api.unreachable and api.hint == "" and api.message == "agent local is not answering"
