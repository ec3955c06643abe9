"""The HTTPS bind: one rule for the agent and the front door service, so one adopts the other."""

from __future__ import annotations

import pytest

from agent.config import AgentConfig, https_front_door
from agent.frontdoor import parse_args, settings_from


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ("TUGBOAT_FRONT_DOOR", "TUGBOAT_HTTPS_FRONT_DOOR"):
        monkeypatch.delenv(name, raising=False)


def test_https_sits_beside_the_default_front_door_and_is_off_beside_an_explicit_one():
    assert https_front_door(None, False, "127.0.0.1") == ("127.0.0.1", 8443)
    assert https_front_door(None, True, "127.0.0.1") == ("127.0.0.1", 0)
    assert https_front_door("0.0.0.0:443", True, "127.0.0.1") == ("0.0.0.0", 443)
    assert https_front_door("off", False, "127.0.0.1")[1] == 0


@pytest.mark.parametrize("front, https", [(None, None), ("127.0.0.1:9000", None),
                                          ("127.0.0.1:9000", "127.0.0.1:9443"), (None, "off")])
def test_agent_and_front_door_service_agree(tmp_path, front, https):
    config = AgentConfig.from_env(home=tmp_path, router="haproxy", front_door=front, https=https)
    argv = ["--state-dir", str(tmp_path)] + (["--front-door", front] if front else []) \
        + (["--https", https] if https else [])
    assert settings_from(parse_args(argv)).https_front_door == config.https_front_door


def test_acme_directory_shortcuts():
    from agent.acme_issuer import LETS_ENCRYPT, LETS_ENCRYPT_STAGING, AcmeSettings

    assert AcmeSettings.from_values(environ={}).directory == LETS_ENCRYPT
    assert AcmeSettings.from_values("staging", environ={}).directory == LETS_ENCRYPT_STAGING
    assert not AcmeSettings.from_values("off", environ={}).enabled
    with pytest.raises(ValueError):
        AcmeSettings.from_values("ftp://x", environ={})
