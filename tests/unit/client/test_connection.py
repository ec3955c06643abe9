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
