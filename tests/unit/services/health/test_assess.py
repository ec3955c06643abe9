"""assess.observe and assess.announcement: a release's health from its containers, and what is announced."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from services.agents.port import ContainerView
from services.health.assess import FLAP_WINDOW, Announcement, Health, Previous, announcement, observe

NOW = datetime(2024, 1, 1, tzinfo=timezone.utc)


def c(n: int, *, deployment: int = 7, state: str = "running", health: str = "HEALTHY", restarts: int = 0,
      detail: str = "") -> ContainerView:
    return ContainerView(id=f"{n:012d}", name=f"web-{n}", app="web", deployment_id=deployment, commit_sha="",
                         image="", state=state, direct_url="", created=None, serving=True, health=health,
                         health_detail=detail, restart_count=restarts)


@pytest.mark.parametrize("containers, expected", [
    ([c(1)], Health.HEALTHY),
    ([c(1, health="")], Health.HEALTHY),          # an agent that does not report router health
    ([c(1, health="UNKNOWN")], Health.HEALTHY),   # checks not concluded yet
    ([c(1, health="UNHEALTHY")], Health.DOWN),
    ([c(1, state="exited")], Health.DOWN),
    ([c(1, state="exited", health="")], Health.DOWN),
    ([], Health.DOWN),
    ([c(1, deployment=6)], Health.DOWN),           # only an older release's container is left
    ([c(1), c(2, health="UNHEALTHY")], Health.DEGRADED),
    ([c(1), c(2, state="restarting")], Health.DEGRADED),
    ([c(1, state="exited"), c(2, health="UNHEALTHY")], Health.DOWN),
    ([c(1), c(2), c(3, deployment=6, state="exited")], Health.HEALTHY),
])
def test_the_release_is_judged_by_its_own_containers(containers, expected):
    assert observe(7, containers, None, NOW).health == expected


def test_the_detail_says_which_container_and_why():
    obs = observe(7, [c(1), c(2, health="UNHEALTHY", detail="L7STS 500")], None, NOW)
    assert "1 of 2" in obs.detail and "web-2" in obs.detail and "L7STS 500" in obs.detail


def test_a_restart_keeps_a_healthy_release_degraded_for_the_flap_window():
    before = Previous(7, Health.HEALTHY, 0, None)
    first = observe(7, [c(1, restarts=1)], before, NOW)
    assert (first.health, first.restarted_at) == (Health.DEGRADED, NOW)
    later = Previous(7, first.health, first.restart_count, first.restarted_at)
    assert observe(7, [c(1, restarts=1)], later, NOW + FLAP_WINDOW - timedelta(seconds=1)).health == Health.DEGRADED
    assert observe(7, [c(1, restarts=1)], later, NOW + FLAP_WINDOW).health == Health.HEALTHY


def test_restarts_of_a_release_are_not_counted_against_the_next_one():
    assert observe(8, [c(1, deployment=8, restarts=3)], Previous(7, Health.HEALTHY, 0, None), NOW).health == Health.HEALTHY
    assert observe(7, [c(1, restarts=3)], None, NOW).health == Health.HEALTHY


@pytest.mark.parametrize("before, after, expected", [
    (None, Health.HEALTHY, None), (None, Health.DEGRADED, None), (None, Health.DOWN, Announcement.DOWN),
    (Health.HEALTHY, Health.DOWN, Announcement.DOWN), (Health.DEGRADED, Health.DOWN, Announcement.DOWN),
    (Health.DOWN, Health.DOWN, None), (Health.DOWN, Health.HEALTHY, Announcement.RECOVERED),
    (Health.DOWN, Health.DEGRADED, Announcement.RECOVERED), (Health.HEALTHY, Health.DEGRADED, None),
    (Health.DEGRADED, Health.HEALTHY, None), (Health.HEALTHY, Health.HEALTHY, None),
])
def test_only_going_down_and_coming_back_are_announced(before, after, expected):
    assert announcement(before, after) == expected
