"""services.apps.config_release.merged_env: what set-env makes of an app's plain and secret env."""

from __future__ import annotations

from services.apps.config_release import merged_env


def test_merged_env_moves_a_name_between_plain_and_secret_and_unsets_quietly():
    plain, secret = merged_env({"A": "1", "B": "2"}, {"S": "x"}, env={"S": "plain now"},
                               secret_env={"B": "secret now"}, unset=["A", "NOPE"])
    assert plain == {"S": "plain now"} and secret == {"B": "secret now"}
