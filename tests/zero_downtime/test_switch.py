"""Keep-alive clients through the front door see only 200s across redeploys, the new version
from the moment the SWITCH is reported, in-flight slow requests complete, slow starters get no
traffic before they are healthy, and failed new versions never take traffic."""

from __future__ import annotations

import time

import pytest
from tugboat.v1 import tugboat_pb2 as pb

from common.phases import Phase

from tests.support.agent_calls import front_get
from tests.support.zd_app import body
from tests.support.zd_load import KeepAliveClient
from tests.zero_downtime.conftest import done

pytestmark = pytest.mark.docker


def _timed_deploy(zd_app, version, **fields):
    """Deploy; returns (events, when the SWITCH event arrived or None, when the event before it
    arrived). The agent switches between those two moments: before the second, only the old
    version may answer; after the first, only the new one."""
    events, switched_at, before_switch = [], None, None
    for event in zd_app.deploy_events(version, **fields):
        now = time.monotonic()
        if event.phase is Phase.SWITCH and switched_at is None and not event.failure:
            switched_at = now
        elif switched_at is None:
            before_switch = now
        events.append(event)
    return events, switched_at, before_switch


def _describe(failures):
    return [(round(s.start, 3), s.status, s.error or s.body[:60]) for s in failures[:5]]


def test_five_redeploys_under_keepalive_load_only_200_and_new_version_after_switch(agent, zd_app):
    zd_app.add_version("v2")
    first = done(zd_app.deploy("v1"))
    assert first.url == f"http://{zd_app.host}:{agent.config.front_door_port}"
    assert front_get(agent.front_door, zd_app.host) == (200, body("v1"))

    fast = KeepAliveClient(agent.front_door, zd_app.host, max_seconds=90)
    slow = KeepAliveClient(agent.front_door, zd_app.host, "/cgi-bin/slow", pause=0, max_seconds=90)
    fast.start(), slow.start()
    switches = []  # (SWITCH event arrived, the event before it arrived, version now serving)
    try:
        time.sleep(0.3)
        for i in range(5):
            version = "v2" if i % 2 == 0 else "v1"
            events, switched_at, before_switch = _timed_deploy(zd_app, version)
            done(events)
            assert switched_at is not None
            switches.append((switched_at, before_switch, version))
            assert any(e.phase is Phase.STOP_OLD and "drained" in e.message for e in events), \
                [e.message for e in events]
        time.sleep(0.3)
    finally:
        samples = fast.stop()
        slow_samples = slow.stop()

    assert len(samples) > 200, len(samples)
    assert fast.failures() == [], _describe(fast.failures())
    assert fast.connections == 1  # one keep-alive connection the whole time
    # From the moment a deploy reports SWITCH, every request gets the new version.
    for n, (switched_at, _, version) in enumerate(switches):
        # Until the next deploy could have switched (its last event before SWITCH arrived).
        until = switches[n + 1][1] if n + 1 < len(switches) else float("inf")
        after = [s for s in samples if switched_at <= s.start < until]
        assert after, f"no request after switch {n}"
        wrong = [s for s in after if s.body != body(version)]
        assert wrong == [], (n, version, _describe(wrong))

    # Slow (1 s) requests in flight during the switches completed with 200.
    assert slow.failures() == [], _describe(slow.failures())
    spanning = [s for s in slow_samples
                if any(s.start < t < s.end for t, _, _ in switches)]
    assert spanning, "no slow request was in flight at a switch"
    assert all(s.status == 200 and s.body == "slow done\n" for s in spanning)


def test_slow_starter_gets_no_traffic_before_healthy(agent, zd_app):
    zd_app.add_version("v2")
    done(zd_app.deploy("v1"))
    client = KeepAliveClient(agent.front_door, zd_app.host, max_seconds=60)
    client.start()
    try:
        started = time.monotonic()
        events, switched_at, before_switch = _timed_deploy(zd_app, "v2", env={"START_DELAY": "2"},
                                                        health_timeout_seconds=20)
        done(events)
        time.sleep(0.2)
    finally:
        samples = client.stop()
    # The switch waited for the delayed container's health check.
    phases = [e.phase for e in events]
    assert phases.index(Phase.HEALTH) < phases.index(Phase.SWITCH)
    assert client.failures() == [], _describe(client.failures())
    # Until the last event before the switch arrived only v1 may answer (the switch comes after
    # it); a request that ends after that but before the SWITCH event arrives may be either.
    before = [s for s in samples if s.end < before_switch]
    assert len(before) > 50 and {s.body for s in before if s.start > started} == {body("v1")}
    assert {s.body for s in samples if s.start >= switched_at} == {body("v2")}


def test_failed_new_versions_roll_back_without_a_failed_request(agent, zd_app, docker_client):
    done(zd_app.deploy("v1"))
    client = KeepAliveClient(agent.front_door, zd_app.host, max_seconds=60)
    client.start()
    try:
        never = zd_app.deploy("v1", health_path="/never-there", health_timeout_seconds=2)
        crash = zd_app.deploy("v1", env={"CRASH": "1", "START_DELAY": "0.3"})
        time.sleep(0.2)
    finally:
        samples = client.stop()
    last = never[-1]
    assert last.failure == pb.FAILURE_KIND_HEALTH
    assert "not healthy within 2s" in last.error and "404" in last.error
    assert "listening on 8080" in last.error  # the container's last log lines
    last = crash[-1]
    assert last.failure == pb.FAILURE_KIND_START
    assert "exited with code 3" in last.error and "crashing on purpose" in last.error
    for failed in (never[-1], crash[-1]):
        assert not any(c.id == failed.container_id for c in docker_client.containers.list(all=True))
    assert len(samples) > 100
    assert client.failures() == [], _describe(client.failures())
    assert {s.body for s in samples} == {body("v1")}
    assert front_get(agent.front_door, zd_app.host) == (200, body("v1"))
