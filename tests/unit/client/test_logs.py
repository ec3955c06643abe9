"""Resuming a broken log stream shows no line twice and asks for the lines of the gap."""

from google.protobuf.timestamp_pb2 import Timestamp
from serversinc.v1 import app_pb2

from client.logs import RESUME_TAIL, LogCursor


def line(second, text, container="c1", nanos=0):
    return app_pb2.LogLine(time=Timestamp(seconds=second, nanos=nanos), text=text, container_id=container)


def test_a_resumed_stream_shows_only_what_is_new():
    cursor = LogCursor()
    first = cursor.request("apps/web", follow=True, tail=5)
    assert (first.tail, first.follow) == (5, True)
    assert [cursor.is_new(x) for x in (line(1, "a"), line(2, "b"), line(2, "c"))] == [True, True, True]
    again = cursor.request("apps/web", follow=True, tail=5)
    assert again.tail == RESUME_TAIL and again.name == "apps/web"
    # The replayed tail: older than anything shown, then what was shown, then the gap and beyond.
    replay = [line(0, "before the first tail"), line(1, "a"), line(2, "b"), line(2, "c"),
              line(2, "d"), line(3, "e"), line(2, "b", container="c2")]
    assert [x.text for x in replay if cursor.is_new(x)] == ["d", "e", "b"]


def test_nothing_is_filtered_before_a_resume():
    cursor = LogCursor()
    # Two containers' lines need not arrive in time order, and the same text may repeat.
    assert all(cursor.is_new(x) for x in (line(5, "new"), line(4, "old", "c2"), line(6, "x"), line(7, "x")))


def test_a_stream_broken_before_any_line_starts_over_with_the_callers_tail():
    cursor = LogCursor()
    assert cursor.request("apps/web", follow=False, tail=0).tail == 0
    assert cursor.request("apps/web", follow=False, tail=0).tail == 0 and not cursor.resumed


def test_a_line_without_a_time_is_always_shown():
    cursor = LogCursor()
    cursor.is_new(line(1, "a"))
    cursor.request("apps/web", True, 0)
    assert cursor.is_new(app_pb2.LogLine(text="no time"))


def test_only_the_last_lines_are_remembered():
    cursor = LogCursor(remember=2)
    for i in range(5):
        cursor.is_new(line(i, str(i)))
    cursor.request("apps/web", True, 0)
    assert [cursor.is_new(line(i, str(i))) for i in range(6)] == [False] * 5 + [True]
