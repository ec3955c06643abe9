"""The health policy: zero means the default, bounds are checked."""

from __future__ import annotations

import pytest

from agent.health import HealthPolicy


def test_health_policy_defaults_and_bounds():
    assert HealthPolicy.from_values() == HealthPolicy(False, 200, 399, 100, 1000, 1)
    assert HealthPolicy.from_values(status_max=404).status_max == 404
    with pytest.raises(ValueError):
        HealthPolicy.from_values(status_min=500, status_max=404)
