"""ReloadGroup: changes saved while no reload ran share one reload; its failure reaches each of them."""

from __future__ import annotations

import threading

import pytest

from agent.reload_group import ReloadGroup
from agent.router import RouterError


def wait_all(group: ReloadGroup, tickets: list[int]) -> list[BaseException | None]:
    outcomes: list[BaseException | None] = [None] * len(tickets)

    def wait(i: int) -> None:
        try:
            group.wait(tickets[i])
        except BaseException as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=wait, args=(i,)) for i in range(len(tickets))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)
    return outcomes


def test_changes_saved_before_a_reload_share_it():
    lock = threading.RLock()
    reloads = []
    group = ReloadGroup(lock, lambda: reloads.append(1))
    with lock:
        tickets = [group.ticket() for _ in range(5)]
    assert wait_all(group, tickets) == [None] * 5
    assert len(reloads) == 1
    with lock:
        later = group.ticket()
    group.wait(later)  # a change saved after that reload gets one of its own
    assert len(reloads) == 2


def test_a_failed_reload_fails_every_change_it_carried_and_the_next_one_can_succeed():
    lock = threading.RLock()
    fail = [True]

    def reload() -> None:
        if fail[0]:
            raise RouterError("haproxy did not come up")

    group = ReloadGroup(lock, reload)
    with lock:
        tickets = [group.ticket() for _ in range(3)]
    outcomes = wait_all(group, tickets)
    assert all(isinstance(o, RouterError) for o in outcomes)
    fail[0] = False
    with lock:
        ticket = group.ticket()
    group.wait(ticket)
    with pytest.raises(RouterError):
        group.wait(tickets[0])  # asked again, the reload that carried it still failed


def test_a_reload_runs_holding_the_router_lock():
    lock = threading.RLock()
    held = []

    def reload() -> None:
        # Another thread cannot take the lock while the reload runs.
        got = []
        t = threading.Thread(target=lambda: got.append(lock.acquire(timeout=0.05)))
        t.start()
        t.join()
        held.append(not got[0])

    group = ReloadGroup(lock, reload)
    with lock:
        ticket = group.ticket()
    group.wait(ticket)
    assert held == [True]


def test_a_leader_waits_for_callers_still_on_their_way_to_the_lock():
    """A caller announced (`arriving`) but not yet saved is carried by the leader's reload, so
    an unfair lock cannot turn changes that came together into one reload each."""
    lock = threading.RLock()
    reloads = []
    group = ReloadGroup(lock, lambda: reloads.append(1))
    with lock:
        first = group.ticket()
    on_its_way = group.arriving()
    on_its_way.__enter__()
    leader = threading.Thread(target=group.wait, args=(first,))
    leader.start()
    with lock:
        second = group.ticket()  # saved while the leader waited for it
    on_its_way.__exit__(None, None, None)
    leader.join(10)
    group.wait(second)
    assert not leader.is_alive() and len(reloads) == 1
