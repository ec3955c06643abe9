"""Group commit: what queued while a batch was written goes in the next one, never two of one key."""

from __future__ import annotations

import threading
import time

from services.db.group_commit import GroupCommit


def wait_until(condition, timeout: float = 10.0) -> None:
    """Until `condition()` holds (the callers' threads have queued): a bounded wait on a state."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.001)


class Writer:
    """A `run` that records its batches; the first one waits until the test opens the gate."""

    def __init__(self, fail=()):
        self.batches: list[list] = []
        self.gate = threading.Event()
        self.writing = threading.Event()
        self.fail = set(fail)

    def __call__(self, items):
        self.batches.append(list(items))
        if len(self.batches) == 1:
            self.writing.set()
            assert self.gate.wait(10)
        if "boom" in items:
            raise RuntimeError("the batch failed")
        return [ValueError(item) if item in self.fail else f"done {item}" for item in items]


def submit_all(group, items, results):
    threads = []
    for item in items:
        def call(item=item):
            try:
                results[item] = group.submit(item)
            except Exception as err:  # noqa: BLE001 - the test reads what each caller got
                results[item] = err
        threads.append(threading.Thread(target=call))
        threads[-1].start()
    return threads


def test_a_caller_alone_is_written_at_once():
    writer = Writer()
    writer.gate.set()
    group = GroupCommit(writer, key=lambda item: item)
    assert group.submit("a") == "done a"
    assert writer.batches == [["a"]]


def test_callers_that_arrive_during_a_batch_are_written_together_and_one_key_waits_for_the_next():
    writer = Writer(fail={"c"})
    group = GroupCommit(writer, key=lambda item: item[0])  # "x1" and "x2" share a key
    results: dict = {}
    first = submit_all(group, ["a"], results)
    assert writer.writing.wait(10)
    others = []
    for item in ["x1", "b", "x2", "c"]:  # one at a time, so their order in the queue is known
        others += submit_all(group, [item], results)
        wait_until(lambda: len(group._pending) == len(others))
    writer.gate.set()
    for t in first + others:
        t.join(10)
    assert writer.batches == [["a"], ["x1", "b", "c"], ["x2"]]
    assert results["a"] == "done a" and results["x2"] == "done x2" and results["b"] == "done b"
    assert isinstance(results["c"], ValueError)  # its own outcome; the others of its batch are written


def test_a_batch_that_raises_fails_its_callers_only_and_the_next_batch_runs():
    writer = Writer()
    group = GroupCommit(writer, key=lambda item: item)
    results: dict = {}
    threads = submit_all(group, ["a"], results)
    assert writer.writing.wait(10)
    threads += submit_all(group, ["boom", "b"], results)
    wait_until(lambda: len(group._pending) == 2)
    writer.gate.set()
    for t in threads:
        t.join(10)
    assert isinstance(results["boom"], RuntimeError) and isinstance(results["b"], RuntimeError)
    assert group.submit("c") == "done c"  # the writer went on: a later caller is written


def test_max_batch_bounds_a_batch():
    writer = Writer()
    group = GroupCommit(writer, key=lambda item: item, max_batch=2)
    results: dict = {}
    threads = submit_all(group, ["a"], results)
    assert writer.writing.wait(10)
    for item in ["b", "c", "d"]:
        threads += submit_all(group, [item], results)
        wait_until(lambda: len(group._pending) == len(threads) - 1)
    writer.gate.set()
    for t in threads:
        t.join(10)
    assert writer.batches == [["a"], ["b", "c"], ["d"]]
    assert results == {k: f"done {k}" for k in "abcd"}


def test_many_callers_each_get_their_own_outcome():
    callers = 40
    writer = Writer()
    writer.gate.set()
    group = GroupCommit(writer, key=lambda item: item % 5)
    results: dict = {}
    threads = submit_all(group, list(range(callers)), results)
    for t in threads:
        t.join(10)
    assert results == {i: f"done {i}" for i in range(callers)}
    assert all(len({i % 5 for i in batch}) == len(batch) for batch in writer.batches)


def test_coroutines_wait_holding_no_thread_and_a_thread_caller_shares_their_batches():
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    writer = Writer(fail={"c"})
    group = GroupCommit(writer, key=lambda item: item)
    results: dict = {}

    async def main():
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(max_workers=2))  # for the waits below
        first = asyncio.ensure_future(group.submit_async("a"))
        await loop.run_in_executor(None, writer.writing.wait, 10)
        rest = [asyncio.ensure_future(group.submit_async(item)) for item in ("b", "c")]
        threads = submit_all(group, ["t"], results)  # a thread caller queues behind them
        await loop.run_in_executor(None, wait_until, lambda: len(group._pending) == 3)
        writer.gate.set()
        outcomes = await asyncio.gather(first, *rest, return_exceptions=True)
        for t in threads:
            t.join(10)
        return outcomes

    a, b, c = asyncio.run(main())
    assert (a, b, results["t"]) == ("done a", "done b", "done t") and isinstance(c, ValueError)
    assert writer.batches[0] == ["a"] and sorted(writer.batches[1]) == ["b", "c", "t"] and len(writer.batches) == 2
