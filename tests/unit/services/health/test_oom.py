"""OOM kills in the health rules (services.health.assess): pure, no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from services.agents.port import ContainerView
from services.health.assess import OOM_WINDOW, Health, observe, oom_detail, oom_news

NOW = datetime(2026, 12, 1, 21, 0, tzinfo=timezone.utc)


def container(oom_kills: int = 0, last_oom: datetime | None = None, state: str = "running") -> ContainerView:
    return ContainerView(id="c" * 12, name="web-1", app="web", deployment_id=7, commit_sha="a" * 40,
                         image="web:1", state=state, direct_url="", created=None, serving=True,
                         health="HEALTHY", oom_kills=oom_kills, last_oom=last_oom)


def test_a_recent_kill_degrades_a_healthy_release_and_says_how_often_and_the_limit():
    obs = observe(7, [container(2, NOW - timedelta(seconds=5))], None, NOW, memory_limit=32 * 1024 ** 2)
    assert obs.health == Health.DEGRADED
    assert obs.detail == ("OOM-killed 2 time(s) since the release started, last at 2026-12-01 20:59:55 UTC "
                          "(memory limit 32 MiB)")
    assert (obs.oom_kills, obs.last_oom) == (2, NOW - timedelta(seconds=5))


def test_an_old_kill_is_still_told_but_no_longer_degrades():
    obs = observe(7, [container(1, NOW - OOM_WINDOW - timedelta(seconds=1))], None, NOW)
    assert obs.health == Health.HEALTHY and "OOM-killed 1 time(s)" in obs.detail
    assert "no memory limit" in obs.detail


def test_a_down_release_stays_down_with_the_kill_added_to_its_detail():
    obs = observe(7, [container(1, NOW, state="exited")], None, NOW)
    assert obs.health == Health.DOWN
    assert obs.detail.startswith("container web-1 is exited; OOM-killed 1 time(s)")


def test_no_kill_changes_nothing():
    assert observe(7, [container()], None, NOW).detail == "" and oom_detail(0, None) == ""


def test_a_kill_is_news_once_and_only_while_recent():
    obs = observe(7, [container(1, NOW - timedelta(seconds=1))], None, NOW)
    assert oom_news(obs, None, NOW)
    assert not oom_news(obs, obs.last_oom, NOW)  # already announced
    assert not oom_news(replace(obs, last_oom=NOW - timedelta(seconds=0.99)), obs.last_oom, NOW)  # the same one
    assert oom_news(replace(obs, last_oom=NOW), obs.last_oom - timedelta(seconds=1), NOW)  # a newer kill
    assert not oom_news(obs, None, NOW + OOM_WINDOW)  # too old to announce now
