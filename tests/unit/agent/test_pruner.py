"""agent.pruner with fakes: never while the app deploys, the build cache only past the threshold,
dry runs remove nothing."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import replace

from agent.image_engine import DiskUsage
from agent.pruner import BUILD_CACHE, IMAGE, Pruner
from agent.release_history import ReleaseHistory
from agent.retention import PENDING_BUILD_SECONDS, Container, Image, Release

GIB = 1024 ** 3


class FakeImages:
    def __init__(self, images, total=0, reclaimable=0):
        self.images, self.total, self.reclaimable = list(images), total, reclaimable
        self.removed, self.cache_pruned = [], 0

    def disk_usage(self):
        return DiskUsage(self.total, 0, self.reclaimable, self.reclaimable, {i.id: 7 for i in self.images})

    def app_images(self, app, unique=None):
        return [replace(i, unique_bytes=(unique or {}).get(i.id, 0)) for i in self.images]

    containers: list = []
    # What happened, in order, shared with the releaser (logs kept, containers removed).
    steps: list = []

    def app_containers(self, app):
        return list(self.containers)

    def remove_container(self, container_id):
        self.steps.append(("removed", container_id))
        self.containers = [c for c in self.containers if c.id != container_id]

    def image_id(self, ref):
        return next((i.id for i in self.images if ref in i.tags), None)

    def remove_image(self, image, app):
        self.removed.append(image.id)
        self.images = [i for i in self.images if i.id != image.id]
        return True

    def prune_build_cache(self):
        self.cache_pruned += 1
        return self.reclaimable


class FakeRouter:
    def serving(self, app):
        return ()


class FakeReleaser:
    def __init__(self, steps=None):
        self.router = FakeRouter()
        self.lock = threading.Lock()
        self.steps = steps if steps is not None else []

    def keep_logs(self, container_id):
        self.steps.append(("logs kept", container_id))

    def retiring(self, app):
        return set()

    @contextmanager
    def unless_deploying(self, app, wait=0.0):
        held = self.lock.acquire(blocking=False)
        try:
            yield held
        finally:
            if held:
                self.lock.release()


class FakeCache:
    def apps(self):
        return []


def _pruner(tmp_path, images, clock=None, **kw):
    history = ReleaseHistory(tmp_path)
    for n, image in enumerate(images, 1):
        history.record("web", Release(n, image.id, f"c{n}", 100.0 + n), 1)
    engine = FakeImages(images, **kw)
    engine.steps = []
    return (Pruner(engine, history, FakeReleaser(engine.steps), FakeCache(), interval=0, disk_threshold=10 * GIB,
                   **({"clock": clock} if clock else {})), engine)


def test_an_app_that_deploys_is_skipped_and_nothing_removed(tmp_path):
    pruner, engine = _pruner(tmp_path, [Image("a", ("web:a",)), Image("b", ("web:b",))])
    with pruner.releaser.lock:  # a deploy of web holds it
        report = pruner.prune("web")
    assert engine.removed == [] and report.skipped == [("web", "deploying now: pruned after its deploy")]
    assert [i.id for i in pruner.prune("web").items] == ["a"] and engine.removed == ["a"]


def test_dry_run_lists_and_removes_nothing(tmp_path):
    pruner, engine = _pruner(tmp_path, [Image("a", ("web:a",)), Image("b", ("web:b",))], total=11 * GIB,
                             reclaimable=GIB)
    report = pruner.prune(dry_run=True)
    assert [(i.kind, i.id) for i in report.items] == [(IMAGE, "a"), (BUILD_CACHE, "")]
    assert engine.removed == [] and engine.cache_pruned == 0 and report.bytes_freed == 7 + GIB


def test_build_cache_only_past_the_threshold(tmp_path):
    pruner, engine = _pruner(tmp_path, [Image("a", ("web:a",))], total=9 * GIB, reclaimable=GIB)
    assert pruner.prune().items == [] and engine.cache_pruned == 0
    engine.total = 11 * GIB
    assert [i.kind for i in pruner.prune().items] == [BUILD_CACHE] and engine.cache_pruned == 1


def test_the_after_deploy_prune_can_be_turned_off(tmp_path):
    pruner, engine = _pruner(tmp_path, [Image("a", ("web:a",)), Image("b", ("web:b",))])
    pruner.after_deploys = False
    pruner.after_deploy("web")
    assert engine.removed == []


def test_a_stopped_container_s_output_is_kept_before_it_is_removed(tmp_path):
    pruner, engine = _pruner(tmp_path, [Image("a", ("web:a",)), Image("b", ("web:b",))])
    engine.containers = [Container("old", "web-1-x", "a", deployment_id=1)]
    pruner.prune("web")
    assert engine.steps == [("logs kept", "old"), ("removed", "old")]


def test_an_image_a_build_handed_out_stays_for_its_deploy_whatever_its_age(tmp_path):
    """A build that reuses an existing image (or is all build cache) keeps the old image's
    creation time: only the agent's word that a build just returned it keeps it for its deploy."""
    now = [1000.0]
    old = Image("c", ("web:c",), created=1.0)  # created long before the last switch
    pruner, engine = _pruner(tmp_path, [Image("a", ("web:a",)), Image("b", ("web:b",))], clock=lambda: now[0])
    engine.images.append(old)
    assert "c" in [i.id for i in pruner.prune("web", dry_run=True).items]
    pruner.built("web", "web:c", "c")
    report = pruner.prune("web")
    assert "c" not in [i.id for i in report.items] and "c" not in engine.removed
    now[0] += PENDING_BUILD_SECONDS + 1  # its deploy never came
    assert "c" in pruner.prune("web").items[-1].id and "c" in engine.removed
