"""Where a client finds the control plane and its token: flag, environment, then the state folder."""

from client.connection import auth_metadata, load_token, resolve_address
from common.defaults import DEFAULT_API


def test_address_and_token_resolution(tmp_path):
    assert resolve_address("h:1", {"SERVERSINC_API": "e:2"}) == "h:1"
    assert resolve_address(None, {"SERVERSINC_API": "e:2"}) == "e:2"
    assert resolve_address(None, {}) == DEFAULT_API
    env = {"SERVERSINC_HOME": str(tmp_path)}
    assert load_token(env) is None
    (tmp_path / "api-token").write_text("filetoken\n")
    assert load_token(env) == "filetoken"
    assert load_token({**env, "SERVERSINC_TOKEN": "envtoken"}) == "envtoken"
    assert auth_metadata("t") == (("authorization", "Bearer t"),)
    assert auth_metadata(None) == ()


def test_only_reads_are_retried():
    import json

    from client.connection import is_read, read_methods, service_config

    names = {(m["service"].rsplit(".", 1)[-1], m["method"]) for m in read_methods()}
    assert {("AppService", "GetApp"), ("AppService", "ListApps"), ("AppService", "StreamAppLogs"),
            ("AppService", "GetAppWebhook"), ("DeploymentService", "WatchDeployment"),
            ("DeploymentService", "ListDeployments"), ("GitService", "ResolveCommit")} <= names
    writes = {"CreateDeployment", "CancelDeployment", "RollbackApp", "CreateApp", "UpdateApp", "DeleteApp",
              "CreateServer", "RegisterServer", "CreateApiToken", "DeleteApiToken"}
    assert not {method for _, method in names} & writes
    assert not any(is_read(w) for w in writes)
    (config,) = json.loads(service_config())["methodConfig"]
    assert config["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert all(m["service"].startswith("serversinc.v1.") for m in config["name"])


def test_the_address_setting_is_checked_when_the_connection_is_made():
    import pytest

    from client.addresses import AddressError
    from client.connection import Connection

    assert Connection("127.0.0.1:1").address == "127.0.0.1:1"
    conn = Connection(" 127.0.0.1:1, localhost:2 ")
    assert conn.addresses == ["127.0.0.1:1", "localhost:2"] and conn.address == "127.0.0.1:1,localhost:2"
    with pytest.raises(AddressError):
        Connection("127.0.0.1:1,nope")
