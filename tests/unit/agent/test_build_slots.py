"""Build slots: a build cancelled while it waits leaves the queue holding nothing, and the limit
comes from TUGBOAT_BUILD_CONCURRENCY with a message that says what to set."""

from __future__ import annotations

import asyncio

import pytest

from agent.build_slots import BuildSlots, limit_from_env
from common.cancel import CancelToken


def test_a_build_cancelled_while_waiting_holds_nothing():
    async def scenario():
        slots = BuildSlots(1)
        assert await slots.acquire(CancelToken())  # the build that runs
        assert not slots.free()
        waiting, token = CancelToken(), CancelToken()
        cancelled = asyncio.create_task(slots.acquire(token))
        behind = asyncio.create_task(slots.acquire(waiting))
        await asyncio.sleep(0)  # both are queued now
        token.cancel()  # from another thread in the agent (Cancel); the loop's own here
        assert await cancelled is False
        slots.release()
        assert await behind is True  # the slot went to the next in line, not to the cancelled one
        slots.release()
        assert slots.free()

    asyncio.run(scenario())


def test_limit_from_env(monkeypatch):
    monkeypatch.delenv("TUGBOAT_BUILD_CONCURRENCY", raising=False)
    assert limit_from_env() == 1
    monkeypatch.setenv("TUGBOAT_BUILD_CONCURRENCY", "3")
    assert limit_from_env() == 3
    for bad in ("0", "two"):
        monkeypatch.setenv("TUGBOAT_BUILD_CONCURRENCY", bad)
        with pytest.raises(ValueError, match="TUGBOAT_BUILD_CONCURRENCY"):
            limit_from_env()
