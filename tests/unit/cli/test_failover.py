"""The CLI with several API addresses: a list it cannot read is a usage error, and a log stream that a
replica dropped is opened again without printing a line twice."""

from types import SimpleNamespace

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from serversinc.v1 import app_pb2

from cli import apps
from cli.main import main


def test_an_unreadable_address_list_is_a_usage_error(capsys, monkeypatch):
    assert main(["--api", "127.0.0.1:1,nope", "apps", "list"]) == 2
    assert "--api: 'nope' is not HOST:PORT" in capsys.readouterr().err
    monkeypatch.setenv("SERVERSINC_API", "127.0.0.1:1,[x]:2")
    assert main(["apps", "list"]) == 2
    assert "$SERVERSINC_API: '[x]:2': only an IPv6 address goes in brackets" in capsys.readouterr().err


class Lost(grpc.RpcError):
    def code(self):
        return grpc.StatusCode.UNAVAILABLE

    def details(self):
        return "Socket closed"

    def trailing_metadata(self):
        return ()


def line(second, text):
    return app_pb2.LogLine(time=Timestamp(seconds=second), text=text, container_id="c")


class FlakyLogs:
    """StreamAppLogs that breaks after two lines the first time, then replays the tail and goes on."""

    def __init__(self):
        self.requests = []

    def GetApp(self, request):
        return app_pb2.App(name=request.name, servers=["local"])

    def StreamAppLogs(self, request):
        self.requests.append(request)
        if len(self.requests) == 1:
            yield line(1, "one")
            yield line(2, "two")
            raise Lost()
        yield from (line(1, "one"), line(2, "two"), line(3, "three"))


def test_a_dropped_log_stream_resumes_without_repeating(capsys):
    stub = FlakyLogs()
    args = SimpleNamespace(name="web", follow=True, tail=None)
    sleeps = []
    assert apps.cmd_logs(SimpleNamespace(apps=stub), args, None, None, sleep=sleeps.append) == 0
    captured = capsys.readouterr()
    assert captured.out == "one\ntwo\nthree\n"
    assert "reconnecting" in captured.err and len(sleeps) == 1
    assert [r.tail for r in stub.requests] == [0, 1000]


def test_a_log_stream_that_keeps_failing_gives_up():
    class Down:
        def GetApp(self, request):
            return app_pb2.App(name=request.name, servers=["local"])

        def StreamAppLogs(self, request):
            raise Lost()

    args = SimpleNamespace(name="web", follow=True, tail=None)
    try:
        apps.cmd_logs(SimpleNamespace(apps=Down()), args, None, None, backoff=(0, 0), sleep=lambda s: None)
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.UNAVAILABLE
    else:
        raise AssertionError("expected the UNAVAILABLE to surface")
