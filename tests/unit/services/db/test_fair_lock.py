"""FairRLock: waiters get the lock in the order they came; its holder may take it again."""

from __future__ import annotations

import threading
import time

import pytest

from services.db.fair_lock import FairRLock


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.001)


def test_waiters_get_the_lock_in_arrival_order_and_newcomers_do_not_barge():
    lock = FairRLock()
    order: list[int] = []
    lock.acquire()

    def waiter(i: int) -> None:
        with lock:
            order.append(i)

    threads = []
    for i in range(8):
        t = threading.Thread(target=waiter, args=(i,))
        t.start()
        threads.append(t)
        wait_for(lambda: len(lock._waiters) == i + 1)  # queued before the next one starts
    lock.release()
    with lock:  # a newcomer after the release queues behind all eight
        order.append(99)
    for t in threads:
        t.join(10)
    assert order == [0, 1, 2, 3, 4, 5, 6, 7, 99]


def test_the_holder_may_take_it_again_and_others_wait_for_the_outer_release():
    lock = FairRLock()
    got = threading.Event()
    with lock:
        with lock:
            pass
        t = threading.Thread(target=lambda: (lock.acquire(), got.set(), lock.release()))
        t.start()
        wait_for(lambda: len(lock._waiters) == 1)
        assert not got.is_set()
    assert got.wait(10)
    t.join(10)


def test_only_the_holder_may_release():
    lock = FairRLock()
    lock.acquire()
    errors = []

    def other():
        try:
            lock.release()
        except RuntimeError as err:
            errors.append(err)

    t = threading.Thread(target=other)
    t.start()
    t.join(10)
    assert errors
    lock.release()
    with pytest.raises(RuntimeError):
        lock.release()
