"""AppSpec.with_defaults().validate(): defaults from common.rules, canonical forms stored, and
nothing cleaned silently (a trailing newline is refused, not trimmed)."""

from __future__ import annotations

import pytest

from common.rules import DRAIN_SECONDS, HEALTH
from services.apps.spec import AppSpec
from services.core.errors import InvalidArgument


def stored(**fields) -> AppSpec:
    return AppSpec(name=fields.pop("name", "web"), repo_url="https://example.test/web.git",
                   **fields).with_defaults().validate()


def test_zero_values_become_the_shared_defaults():
    spec = stored()
    assert (spec.health_path, spec.health_status_min, spec.health_status_max) == \
        (HEALTH.path, HEALTH.status_min, HEALTH.status_max)
    assert (spec.health_interval_ms, spec.health_probe_timeout_ms, spec.healthy_threshold) == \
        (HEALTH.interval_ms, HEALTH.probe_timeout_ms, HEALTH.healthy_threshold)
    assert spec.drain_seconds == DRAIN_SECONDS
    assert spec.stop_signal == "SIGTERM"


def test_stop_signal_and_domains_are_stored_in_canonical_form():
    spec = stored(stop_signal="quit", domains=["WWW.Example.com.", "a.test", "www.example.com"])
    assert spec.stop_signal == "SIGQUIT"
    assert spec.domains == ["a.test", "www.example.com"]


@pytest.mark.parametrize("fields,allowed", [
    ({"name": "web\n"}, "lowercase letters, digits and '-'"),
    ({"env": {"FOO\n": "1"}}, "letters, digits and '_'"),
    ({"secret_env": {"1X": "1"}}, "letters, digits and '_'"),
    ({"stop_signal": "SIGNOPE"}, "signal name like SIGTERM"),
    ({"domains": ["a.com\n"]}, "valid host name"),
    ({"domains": [" a.com"]}, "valid host name"),
    ({"health_interval_ms": 5}, "use 10 to 60000"),
])
def test_bad_input_is_refused_with_what_is_allowed(fields, allowed):
    with pytest.raises(InvalidArgument) as caught:
        stored(**fields)
    assert allowed in caught.value.message
