"""OomWatch's counting (agent.oom_watch), fed events by hand: no engine, no thread."""

from __future__ import annotations

from datetime import datetime, timezone

from agent.docker_engine import ContainerRecord, container_limits, build_limits
from agent.oom_watch import SAME_KILL_SECONDS, OomWatch

T0 = 1_796_157_240.0


def record(oom_killed: bool = False, finished_at: datetime | None = None) -> ContainerRecord:
    return ContainerRecord(id="c1", name="web-1", app="web", deployment_id=1, commit_sha="a", image="web:1",
                           state="running", exit_code=0, restart_count=0, host_port=None,
                           created=datetime.fromtimestamp(T0 - 60, timezone.utc), oom_killed=oom_killed,
                           finished_at=finished_at)


def test_events_count_once_each_and_a_burst_is_one_kill():
    watch = OomWatch(engine=None)
    watch._count("c1", T0)
    watch._count("c1", T0 + 0.3)  # the same allocation's second event
    watch._count("c1", T0)  # repeated by a reconnect
    assert (watch.kills(record()).count, watch.kills(record()).last.timestamp()) == (1, T0)
    watch._count("c1", T0 + SAME_KILL_SECONDS + 1)
    assert watch.kills(record()).count == 2
    assert watch.kills(record()).last.timestamp() == T0 + SAME_KILL_SECONDS + 1


def test_dockers_flag_counts_once_for_a_kill_the_stream_no_longer_holds():
    exited = datetime.fromtimestamp(T0, timezone.utc)
    watch = OomWatch(engine=None)
    assert (watch.kills(record(True, exited)).count, watch.kills(record(True, exited)).last) == (1, exited)
    assert watch.kills(record()).count == 0 and watch.kills(record()).last is None


def test_limits_become_docker_arguments_and_zero_is_none():
    assert container_limits(0, 0) == {} and build_limits(0, 0) == {}
    assert container_limits(32 << 20, 500) == {"mem_limit": 32 << 20, "memswap_limit": 32 << 20,
                                               "nano_cpus": 500_000_000}
    assert build_limits(32 << 20, 500) == {"memory": 32 << 20, "memswap": 32 << 20,
                                           "cpuperiod": 100_000, "cpuquota": 50_000}
