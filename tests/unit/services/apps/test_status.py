"""status.derive: every combination of what is deploying, what serves, the last outcome and health."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from services.apps.status import derive


def app(serving: int | None):
    return SimpleNamespace(current_deployment_id=serving)


def dep(state: str):
    return SimpleNamespace(state=state)


def health(value: str, deployment_id: int = 1):
    return SimpleNamespace(health=value, deployment_id=deployment_id)


@pytest.mark.parametrize("serving", [None, 1])
@pytest.mark.parametrize("latest", [None, "SUCCEEDED", "FAILED", "CANCELLED"])
@pytest.mark.parametrize("seen", [None, "HEALTHY", "DEGRADED", "DOWN"])
def test_a_deployment_in_progress_is_deploying_whatever_else_holds(serving, latest, seen):
    assert derive(app(serving), dep(latest) if latest else None, True, health(seen) if seen else None) == "DEPLOYING"


@pytest.mark.parametrize("latest, expected", [(None, "NEW"), ("CANCELLED", "NEW"), ("FAILED", "FAILED")])
def test_with_nothing_serving_failed_only_when_the_last_deployment_failed(latest, expected):
    assert derive(app(None), dep(latest) if latest else None, False) == expected


@pytest.mark.parametrize("latest", [None, "SUCCEEDED", "FAILED", "CANCELLED"])
@pytest.mark.parametrize("seen, expected", [(None, "RUNNING"), ("HEALTHY", "RUNNING"), ("DEGRADED", "DEGRADED"),
                                            ("DOWN", "DOWN")])
def test_a_serving_release_is_judged_by_its_health_not_by_a_later_failure(latest, seen, expected):
    assert derive(app(1), dep(latest) if latest else None, False, health(seen) if seen else None) == expected


def test_health_seen_of_an_older_release_does_not_speak_for_the_new_one():
    assert derive(app(2), dep("SUCCEEDED"), False, health("DOWN", deployment_id=1)) == "RUNNING"
