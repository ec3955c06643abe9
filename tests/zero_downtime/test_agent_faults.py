"""The front door outlives the agent: agent SIGTERM, SIGKILL and restart under steady keep-alive
load fail no request and the next agent adopts the same HAProxy; a HAProxy killed with -9 is
restored by the front door service with every route, and a switch that meets the restart works;
a killed front door service leaves HAProxy serving and the next service adopts it.

The agents of the first test are real processes (`.venv/bin/tugboat`): only a process can be
killed with SIGKILL."""

from __future__ import annotations

import os
import signal

import pytest

from agent.frontdoor_files import FrontDoorFiles
from agent.haproxy_process import running_master, worker_pids
from agent.router import RouterError
from agent.server import make_router
from common.phases import Phase
from tests.conftest import agent_config, free_port, new_secret
from tests.support.agent_calls import front_get, wait_until
from tests.support.agent_process import run_agent
from tests.support.zd_app import body
from tests.support.zd_load import KeepAliveClient
from tests.zero_downtime.conftest import ZdApp, done

pytestmark = pytest.mark.docker

def serves(front_door: str, host: str, text: str) -> bool:
    try:
        return front_get(front_door, host, timeout=1) == (200, text)
    except OSError:  # HAProxy is restarting
        return False


def test_agent_sigterm_sigkill_and_restart_fail_no_request(agent_home, app_name, tmp_path):
    secret, front_door = new_secret(), f"127.0.0.1:{free_port()}"
    files = FrontDoorFiles.for_state(agent_home)
    agents = [run_agent(agent_home, front_door, secret)]
    try:
        app = ZdApp(agents[0], app_name, tmp_path)
        app.add_version("v2")
        done(app.deploy("v1"))
        master = running_master(files)
        load = KeepAliveClient(front_door, app.host, max_seconds=90)
        load.start()
        assert wait_until(lambda: len(load.samples) >= 20, timeout=10)

        agents[0].end(signal.SIGTERM)
        count = len(load.samples)
        assert wait_until(lambda: len(load.samples) >= count + 20, timeout=10)  # no agent runs
        agents.append(run_agent(agent_home, front_door, secret))
        assert running_master(files) == master  # adopted
        agents[1].end(signal.SIGKILL)
        count = len(load.samples)
        assert wait_until(lambda: len(load.samples) >= count + 20, timeout=10)

        agents.append(run_agent(agent_home, front_door, secret))  # a restart (or an upgrade)
        assert running_master(files) == master
        app.agent = agents[2]
        done(app.deploy("v2"))
        assert wait_until(lambda: load.samples[-1].body == body("v2"), timeout=10)
        samples = load.stop()
    finally:
        for agent in agents:
            if agent.proc.poll() is None:
                agent.end(signal.SIGTERM)
    assert not [s for s in samples if s.status != 200], [s for s in samples if s.status != 200][:3]
    assert {s.body for s in samples} == {body("v1"), body("v2")}
    assert running_master(files) == master


def test_haproxy_killed_is_restored_with_every_route_and_a_switch_meets_it(
        agent, make_app_name, tmp_path):
    files = FrontDoorFiles.for_state(agent.config.state_dir)
    other, app = ZdApp(agent, make_app_name(), tmp_path), ZdApp(agent, make_app_name(), tmp_path)
    app.add_version("v2")
    done(other.deploy("v1"))
    done(app.deploy("v1"))
    master = running_master(files)
    killed = [master] + worker_pids(master)
    events = []
    for event in app.deploy_events("v2"):
        events.append(event)
        if event.phase is Phase.HEALTH and len(killed) > 1 and master in killed:
            for pid in killed:
                os.kill(pid, signal.SIGKILL)
            master = None  # kill once, right before the switch
    done(events)
    assert any(e.phase is Phase.SWITCH for e in events)
    new_master = running_master(files)
    assert new_master not in (None, *killed)
    assert front_get(agent.front_door, app.host) == (200, body("v2"))
    assert front_get(agent.front_door, other.host) == (200, body("v1"))


def test_a_second_agent_on_one_front_door_is_refused(agent):
    second = make_router(agent_config(agent.config.state_dir,
                                      front_door_port=agent.config.front_door_port))
    with pytest.raises(RouterError, match="another agent"):
        second.start()


def test_a_killed_front_door_service_leaves_haproxy_serving_and_the_next_one_adopts_it(
        agent, zd_app):
    from agent.frontdoor import service_pid, start_detached
    from agent.frontdoor_files import Settings

    files = FrontDoorFiles.for_state(agent.config.state_dir)
    done(zd_app.deploy("v1"))
    master, service = running_master(files), service_pid(files)
    os.kill(service, signal.SIGKILL)
    assert wait_until(lambda: service_pid(files) is None, timeout=10)
    assert front_get(agent.front_door, zd_app.host) == (200, body("v1"))  # HAProxy did not notice

    start_detached(files, Settings("127.0.0.1", agent.config.front_door_port))
    assert service_pid(files) not in (None, service) and running_master(files) == master
    # The adopted master is not the new service's child; its death is still seen and repaired.
    for pid in [master] + worker_pids(master):
        os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: running_master(files) not in (None, master)
                      and serves(agent.front_door, zd_app.host, body("v1")), timeout=15)
