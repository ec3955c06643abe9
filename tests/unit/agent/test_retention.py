"""agent.retention: which images and containers a prune keeps (pure, no engine)."""

from __future__ import annotations

from agent.release_history import ReleaseHistory
from agent.retention import Container, History, Image, Release, plan, retained_images

NOW = 1_000_000.0


def _history(retain, *image_ids):
    return History(retain, tuple(Release(n, i, f"sha{n}", NOW - 1000 + n) for n, i in enumerate(image_ids, 1)))


def _images(*ids, created=NOW - 5000):
    return [Image(i, (f"app:{i}",), created=created, unique_bytes=10) for i in ids]


def _removed(p, kind="image"):
    return {r.id for r in p.removals if r.kind == kind}


def test_keeps_the_last_n_distinct_images_in_the_order_they_served():
    # a, b, c, d, e; then a rollback to b: b is the newest again, and counts once.
    h = _history(3, "a", "b", "c", "d", "e", "b")
    assert retained_images(h) == ["b", "e", "d"]
    p = plan(h, _images("a", "b", "c", "d", "e"), [], now=NOW)
    assert _removed(p) == {"a", "c"}


def test_serving_and_draining_images_stay_even_past_retention():
    h = _history(1, "a", "b", "c")
    containers = [Container("c1", "app-1", "a", 1, running=True, serving=True),
                  Container("c2", "app-2", "b", 2, running=True, draining=True)]
    p = plan(h, _images("a", "b", "c"), containers, now=NOW)
    assert _removed(p) == set() and set(p.kept) == {"a", "b", "c"}


def test_stopped_containers_go_first_and_free_their_image():
    h = _history(1, "a", "b")
    p = plan(h, _images("a", "b"), [Container("old", "app-1", "a", 1)], now=NOW)
    assert _removed(p, "container") == {"old"} and _removed(p) == {"a"}
    assert [r.kind for r in p.removals] == ["container", "image"]


def test_a_build_after_the_last_switch_waits_for_its_deploy():
    h = _history(1, "a")
    pending = Image("new", ("app:new",), created=h.last_switch + 5)
    stale = Image("failed", ("app:failed",), created=h.last_switch - 60)
    p = plan(h, [pending, stale, *_images("a")], [], now=NOW)
    assert "new" in p.kept and _removed(p) == {"failed"}
    assert [r.reason for r in p.removals] == ["never released (its deploy failed or never came)"]


def test_releases_seconds_apart_are_pruned_past_retention_whatever_their_images_creation_time():
    # Three releases within the clock slack (a fast machine, images from the build cache): the engine
    # stamps whole seconds, so the first image looks built "after" the last switch; it took traffic,
    # so it is no deploy to come.
    h = History(1, (Release(1, "a", "sha1", NOW), Release(2, "b", "sha2", NOW + 0.6), Release(3, "c", "sha3", NOW + 1.2)))
    images = [Image(i, (f"app:{i}",), created=NOW, unique_bytes=10) for i in ("a", "b", "c")]
    p = plan(h, images, [], now=NOW + 1.3)
    assert _removed(p) == {"a", "b"} and set(p.kept) == {"c"}
    assert {r.reason for r in p.removals} == {"older than the last 1 releases"}


def test_history_file_records_and_forgets(tmp_path):
    store = ReleaseHistory(tmp_path)
    assert store.get("web") is None and store.apps() == []
    store.record("web", Release(1, "sha256:a", "c1", 1.0), 5)
    h = store.record("web", Release(2, "sha256:b", "c2", 2.0), 3)
    assert store.get("web") == h and h.retain == 3 and [r.deployment_id for r in h.releases] == [1, 2]
    assert store.apps() == ["web"]
    store.forget("web")
    assert store.get("web") is None
