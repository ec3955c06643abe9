"""Agent config and CLI: the router and front door options."""

from __future__ import annotations

import pytest

from agent.config import AgentConfig, parse_front_door
from agent.main import parse_args
from agent.router import DirectRouter
from agent.server import make_router


def test_agent_config_and_cli_router_options(tmp_path, monkeypatch):
    assert parse_front_door("0.0.0.0:9000") == ("0.0.0.0", 9000)
    assert parse_front_door("9001") == ("127.0.0.1", 9001)
    with pytest.raises(ValueError):
        parse_front_door("x:y")
    monkeypatch.setenv("TUGBOAT_FRONT_DOOR", "127.0.0.1:9100")
    monkeypatch.setenv("TUGBOAT_ROUTER", "direct")
    config = AgentConfig.from_env(home=tmp_path)
    assert (config.front_door_port, config.router, config.front_door) == (9100, "direct", "")
    assert isinstance(make_router(config), DirectRouter)
    config = AgentConfig.from_env(home=tmp_path, front_door="127.0.0.1:9200", router="haproxy")
    assert config.front_door == "127.0.0.1:9200"
    assert AgentConfig(state_dir=tmp_path).front_door_port == 8000
    args = parse_args(["--front-door", "127.0.0.1:9300", "--router", "direct"])
    assert (args.front_door, args.router) == ("127.0.0.1:9300", "direct")
    with pytest.raises(ValueError):
        AgentConfig(state_dir=tmp_path, router="nginx")
