"""An agent adopting a front door rendered with fewer slots per backend (an older agent's two)
reloads it once at start, before any switch could need a slot HAProxy does not have."""

from __future__ import annotations

import threading

from agent.haproxy import HAProxyRouter
from agent.route_policy import SLOTS, Route
from agent.router import RouteStore


class _Api:
    def __init__(self, slots):
        self.slots = slots

    def stats(self):
        return [{"pxname": "app_web", "svname": s} for s in self.slots]


class _Process:
    reloads = 0

    def reload(self):
        self.reloads += 1


def _router(tmp_path, slots) -> HAProxyRouter:
    router = object.__new__(HAProxyRouter)
    router.store = RouteStore(tmp_path / "routes.json")
    router.store.save({"web": Route()})
    router._lock = threading.RLock()
    router.api, router.process = _Api(slots), _Process()
    return router


def test_a_backend_missing_slots_is_rendered_again_once(tmp_path):
    router = _router(tmp_path, ("blue", "green"))
    router._render_missing_slots()
    assert router.process.reloads == 1


def test_a_front_door_with_every_slot_is_left_alone(tmp_path):
    router = _router(tmp_path, SLOTS)
    router._render_missing_slots()
    assert router.process.reloads == 0
