"""Carries out retention (agent.retention) on the engine: on request, after each successful
deploy, and on a schedule of its own.

Never while the app deploys: a prune of an app holds the releaser's per-app lock, taken without
waiting, so an app that deploys right now is skipped (and pruned after that deploy ends) and a
deploy that starts meanwhile waits only for the prune's few removals. An app this agent never
released (no history) is left alone: its images' order of service is unknown, and they may
belong to another agent on the same engine.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from agent import retention
from agent.docker_engine import EngineError
from agent.image_engine import ImageEngine
from agent.prune_settings import DEFAULT_DISK_THRESHOLD_BYTES, DEFAULT_INTERVAL_SECONDS
from agent.release_history import ReleaseHistory
from agent.repo_cache import RepoCache

log = logging.getLogger(__name__)


# The deploy lets go of the app right after its DONE event; a next deploy that takes the app
# first makes this prune give up (that deploy prunes after itself), so the wait stays short.
AFTER_DEPLOY_WAIT = 10.0

IMAGE, CONTAINER, BUILD_CACHE, REPOSITORY_CACHE = "image", "container", "build_cache", "repository_cache"


@dataclass(frozen=True)
class Item:
    kind: str
    app: str
    id: str
    name: str
    reason: str
    deployment_id: int = 0
    size_bytes: int = 0


@dataclass
class Report:
    dry_run: bool
    items: list[Item] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def bytes_freed(self) -> int:
        return sum(i.size_bytes for i in self.items)


@dataclass(frozen=True)
class ImageView:
    image: retention.Image
    retained: bool
    deployment_ids: tuple[int, ...]


class Pruner:
    def __init__(self, images: ImageEngine, history: ReleaseHistory, releaser, cache: RepoCache,
                 *, interval: float = DEFAULT_INTERVAL_SECONDS,
                 disk_threshold: int = DEFAULT_DISK_THRESHOLD_BYTES,
                 after_deploys: bool = True, clock=time.monotonic) -> None:
        self.images = images
        self.history = history
        self.releaser = releaser
        self.cache = cache
        self.interval = interval
        self.disk_threshold = disk_threshold
        self.after_deploys = after_deploys
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._serial = threading.Lock()  # one prune at a time: two would race on the same removals
        # app -> {image id: when a build handed it out (`clock`)}, until its release or expiry.
        self._clock = clock
        self._pending: dict[str, dict[str, float]] = {}
        self._pending_lock = threading.Lock()

    # ---- what stays ------------------------------------------------------------------------
    def _observe(self, app: str, unique: dict[str, int] | None):
        images = self.images.app_images(app, unique)
        serving = set(self.releaser.router.serving(app))
        retiring = self.releaser.retiring(app)
        containers = [retention.Container(c.id, c.name, c.image_id, c.deployment_id, c.running,
                                          serving=c.id in serving, draining=c.id in retiring)
                      for c in self.images.app_containers(app)]
        return images, containers

    def list_images(self, app: str) -> tuple[list[ImageView], int]:
        """The app's platform images, each flagged when retention keeps it; and its N."""
        history = self.history.get(app)
        images, containers = self._observe(app, None)
        if history is None:  # never released here: nothing is pruned, so everything stays
            return [ImageView(i, True, ()) for i in images], 0
        plan = retention.plan(history, images, containers, now=time.time(), pending=self._pending_of(app))
        return [ImageView(i, i.id in plan.kept, tuple(retention.releases_of(history, i.id)))
                for i in images], history.retain

    # ---- prune -----------------------------------------------------------------------------
    def prune(self, app: str = "", *, dry_run: bool = False, wait: float = 0.0,
              sizes: bool = True) -> Report:
        """One app (or every app released here, plus the engine-wide build cache and the
        repository caches); with dry_run, only what would go. An app that deploys is skipped,
        unless its deploy ends within `wait` seconds. Without `sizes` (the prune after a deploy,
        which nobody reads) no `system df` is asked for: an image's size is then its full size."""
        started = time.monotonic()
        report = Report(dry_run)
        with self._serial:
            usage = None
            if sizes or not app:
                try:
                    usage = self.images.disk_usage()
                except EngineError as exc:  # sizes unknown this time; retention goes ahead without them
                    log.warning("engine disk use unknown: %s", exc)
            for name in ([app] if app else self.history.apps()):
                self._prune_app(name, usage.unique if usage else None, report, wait)
            if not app:
                if usage is not None:
                    self._prune_build_cache(usage, report)
                self._compact_repositories(report)
        report.seconds = time.monotonic() - started
        return report

    def _prune_app(self, app: str, unique: dict[str, int] | None, report: Report, wait: float) -> None:
        history = self.history.get(app)
        if history is None:
            report.skipped.append((app, "no release recorded by this agent: its images are left alone"))
            return
        with self.releaser.unless_deploying(app, wait) as free:
            if not free:
                report.skipped.append((app, "deploying now: pruned after its deploy"))
                return
            images, containers = self._observe(app, unique)
            plan = retention.plan(history, images, containers, now=time.time(), pending=self._pending_of(app))
            # Containers first: an image a stopped container uses cannot go before it.
            for removal in sorted(plan.removals, key=lambda r: r.kind != "container"):
                if report.dry_run or self._remove(app, removal, images):
                    report.items.append(Item(IMAGE if removal.kind == "image" else CONTAINER, app,
                                             removal.id, removal.name, removal.reason,
                                             removal.deployment_id, removal.size_bytes))

    def _remove(self, app: str, removal: retention.Removal, images: list[retention.Image]) -> bool:
        try:
            if removal.kind == "container":
                # Its output is kept first, as for every container the releaser removes.
                self.releaser.keep_logs(removal.id)
                self.images.remove_container(removal.id)
                return True
            image = next(i for i in images if i.id == removal.id)
            return self.images.remove_image(image, app)
        except EngineError as exc:
            log.warning("prune of %s: could not remove %s %s: %s", app, removal.kind, removal.name, exc)
            return False

    def _prune_build_cache(self, usage, report: Report) -> None:
        if usage.total_bytes <= self.disk_threshold or not usage.build_cache_reclaimable:
            return
        reason = (f"engine uses {usage.total_bytes / 1024 ** 3:.1f} GiB, over the threshold of "
                  f"{self.disk_threshold / 1024 ** 3:.1f} GiB")
        freed = usage.build_cache_reclaimable
        if not report.dry_run:
            try:
                freed = self.images.prune_build_cache()
            except EngineError as exc:
                log.warning("pruning the build cache failed: %s", exc)
                return
        report.items.append(Item(BUILD_CACHE, "", "", "dangling build cache", reason, 0, freed))

    def _compact_repositories(self, report: Report) -> None:
        for app in self.cache.apps():
            if report.dry_run:
                continue  # compaction removes nothing a person would miss; not listed as "would go"
            freed = self.cache.compact(app)
            if freed is not None and freed > 0:
                report.items.append(Item(REPOSITORY_CACHE, app, "", str(self.cache.path(app)),
                                         "git gc", 0, freed))

    # ---- when ------------------------------------------------------------------------------
    def built(self, app: str, image: str, image_id: str) -> None:
        """A build of the app succeeded (or reused an image that exists): its image stays until
        it takes traffic, or for PENDING_BUILD_SECONDS, whatever the image's creation time and
        whatever releases switch meanwhile (a client may build several versions, then deploy
        them one after another)."""
        try:
            image_id = self.images.image_id(image) or image_id  # the engine's own id, as plans use
        except Exception:
            log.warning("pending build of %s: %s kept by the id the build reported", app, image)
        with self._pending_lock:
            self._pending.setdefault(app, {})[image_id] = self._clock()

    def _pending_of(self, app: str) -> list[str]:
        horizon = self._clock() - retention.PENDING_BUILD_SECONDS
        with self._pending_lock:
            pending = self._pending.get(app, {})
            for image_id in [i for i, at in pending.items() if at < horizon]:
                del pending[image_id]
            return list(pending)

    def released(self, spec) -> None:
        """A release of the app took traffic (agent.releaser, right after the switch): record
        it, with the app's N as of this deploy. Never fails the deploy."""
        try:
            image_id = self.images.image_id(spec.image) or spec.image
            with self._pending_lock:
                self._pending.get(spec.app, {}).pop(image_id, None)
            self.history.record(spec.app, retention.Release(spec.deployment_id, image_id,
                                                            spec.commit_sha, time.time()),
                                spec.retain_releases)
        except Exception:
            log.exception("recording the release of %s for retention", spec.app)

    def after_deploy(self, app: str) -> None:
        """A deploy of `app` succeeded: prune it in the background once the deploy lets go of
        the app (its lock), waiting for that at most AFTER_DEPLOY_WAIT seconds."""
        if not self.after_deploys:
            return
        threading.Thread(target=self._quietly, args=(app, AFTER_DEPLOY_WAIT), name=f"prune-{app}",
                         daemon=True).start()

    def _quietly(self, app: str = "", wait: float = 0.0) -> None:
        try:
            report = self.prune(app, wait=wait, sizes=not app)
            if report.items:
                log.info("pruned %s: %d item(s), %d bytes", app or "all apps", len(report.items),
                         report.bytes_freed)
        except Exception:  # a prune never takes the agent down; the next one tries again
            log.exception("prune of %s failed", app or "all apps")

    def start(self) -> None:
        if self.interval <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="prune-schedule", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._quietly()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
