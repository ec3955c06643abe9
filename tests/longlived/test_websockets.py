"""WebSockets and server-sent events through the front door and through deploys.

On a switch new connections go to the new release at once, while the old container keeps its
open WebSockets until they close (then it is stopped and removed, not earlier) or until its
drain deadline (then it is stopped, which closes them, not earlier). The deploy's events show
the old container's open connections. An event stream is passed on unbuffered."""

from __future__ import annotations

import time

import pytest
from tugboat.v1 import tugboat_pb2 as pb

from common.phases import Phase
from tests.support.agent_calls import front_get, wait_until
from tests.support.ws_app import WebSocket, event_stream, greeting

pytestmark = pytest.mark.docker

HELD = 100
DEPLOYS = 5
LONG_DRAIN = 900  # longer than the test: nothing may close on its own


def _done(events):
    last = events[-1]
    assert last.phase is Phase.DONE and not last.failure, (last.failure, last.error)
    return last


def _running(docker_client, container_id: str) -> bool:
    try:
        return docker_client.containers.get(container_id).status == "running"
    except Exception:  # removed
        return False


def _containers(docker_client, app: str) -> list:
    """One list call, no inspect per container (a container removed meanwhile is no error)."""
    return docker_client.api.containers(all=True, filters={"label": f"io.serversinc.app={app}"})


def test_hundred_websockets_held_through_five_deploys(agent, ws_app, docker_client):
    versions = [f"v{i}" for i in range(2, DEPLOYS + 2)]
    for version in versions:
        ws_app.add_version(version)
    first = _done(ws_app.deploy("v1", LONG_DRAIN))
    v1_container = first.container_id
    held = [WebSocket(agent.front_door, ws_app.host) for _ in range(HELD)]
    assert {ws.greeting for ws in held} == {greeting("v1")}

    later: list[WebSocket] = []
    for version in versions:
        events = ws_app.deploy(version, LONG_DRAIN)
        _done(events)
        # Every new connection lands on the new release, at once.
        fresh = [WebSocket(agent.front_door, ws_app.host) for _ in range(5)]
        assert {ws.greeting for ws in fresh} == {greeting(version)}
        assert front_get(agent.front_door, ws_app.host)[0] == 200
        later += fresh
        # None of the held connections was closed by the switch or the drain.
        assert [ws for ws in held + later if ws.is_closed()] == []
        drain_lines = [e.message for e in events if "connection(s) open" in e.message]
        assert drain_lines, [e.message for e in events]
        if version == "v2":
            assert any(f"{HELD} connection(s) open" in line for line in drain_lines), drain_lines
        assert any("still open" in e.message for e in events), [e.message for e in events]

    # The v1 container still serves its connections (it drains in the background), and the
    # agent reports it so (the control plane's containers view and the dashboard show it) ...
    assert _running(docker_client, v1_container)
    listed = {c.id: c for c in agent.stub.ListContainers(pb.ListContainersRequest(app=ws_app.app)).containers}
    assert listed[v1_container].draining and listed[v1_container].open_connections == HELD
    assert sum(c.serving for c in listed.values()) == 1
    assert not any(c.draining for c in listed.values() if c.serving)
    # ... and is stopped and removed once they close, well before its deadline.
    for ws in held:
        ws.close()
    assert wait_until(lambda: not _running(docker_client, v1_container), timeout=60)
    assert [ws for ws in later if ws.is_closed()] == []
    for ws in later:
        ws.close()
    # Every older release goes once its connections are closed: only the serving one is left.
    assert wait_until(lambda: len(_containers(docker_client, ws_app.app)) == 1, timeout=60)


def test_at_the_drain_deadline_the_old_container_is_stopped_not_before(agent, ws_app, docker_client):
    ws_app.add_version("v2")
    first = _done(ws_app.deploy("v1", 30))
    held = [WebSocket(agent.front_door, ws_app.host) for _ in range(10)]
    deadline = 4
    started = time.monotonic()
    events = ws_app.deploy("v2", deadline)
    _done(events)
    assert wait_until(lambda: all(ws.is_closed() for ws in held), timeout=60)
    # Closed by the stop at the deadline, not before it (measured from before the deploy
    # began, so this only allows the switch to have happened later than that).
    closed = min(ws.closed_at for ws in held)
    assert closed - started >= deadline, closed - started
    assert wait_until(lambda: len(_containers(docker_client, ws_app.app)) == 1, timeout=30)
    assert not _running(docker_client, first.container_id)
    assert any("10 connection(s) open" in e.message for e in events), [e.message for e in events]


def test_an_old_release_without_open_connections_is_stopped_at_once(agent, ws_app, docker_client):
    ws_app.add_version("v2")
    first = _done(ws_app.deploy("v1", LONG_DRAIN))
    events = ws_app.deploy("v2", LONG_DRAIN)
    _done(events)
    # The drain found nothing open: the deploy itself stopped and removed the old container.
    assert not _running(docker_client, first.container_id)
    assert any("stopped and removed" in e.message for e in events), [e.message for e in events]


def test_server_sent_events_arrive_unbuffered(agent, ws_app):
    _done(ws_app.deploy("v1", 30))
    stream = event_stream(agent.front_door, ws_app.host, 5)
    head = next(stream)
    assert " 200 " in head.split("\r\n", 1)[0] and "text/event-stream" in head
    # Each event is written only after the client asked for it, having received the previous
    # one: had the front door buffered (or compressed) the stream, this would stall.
    assert list(stream) == [f"event {i} of release v1" for i in range(1, 6)]


def test_a_reload_during_a_drain_keeps_the_old_release_until_its_connections_close(agent, ws_app, docker_client):
    """HAProxy reloads while an old release drains (another app added, a domain changed): its
    open WebSockets stay with the previous HAProxy worker, which keeps them; the drain counts
    them there, so the old container is stopped when they close, not at the reload."""
    ws_app.add_version("v2")
    first = _done(ws_app.deploy("v1", 30))
    held = [WebSocket(agent.front_door, ws_app.host) for _ in range(5)]
    _done(ws_app.deploy("v2", LONG_DRAIN))
    assert _running(docker_client, first.container_id)
    agent.router.process.reload()
    # The new worker holds none of them: they are counted in the old one.
    assert wait_until(lambda: sum(agent.router.draining(ws_app.app).values()) == 5, timeout=10)
    # The drain looks every 0.25 s: twenty looks later, nothing was stopped or closed.
    assert not wait_until(lambda: not _running(docker_client, first.container_id)
                          or any(ws.is_closed() for ws in held), timeout=5)
    for ws in held:
        ws.close()
    assert wait_until(lambda: not _running(docker_client, first.container_id), timeout=30)
    assert front_get(agent.front_door, ws_app.host)[0] == 200
