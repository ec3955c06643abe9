"""Which of an app's platform images and containers stay, and which a prune removes (pure).

The rule, in one place:
- kept: the images of the app's last N releases that served, N = the app's `retain_releases`
  (default 5), counted as distinct images in the order they last took traffic, so a rollback to
  an old release makes its image the newest again and two releases of one image count once;
- kept as well: every image a remaining container uses (what serves now, an old release still
  draining), and every image never released that was built after the last release took traffic
  (built for a deploy still to come, or whose deploy failed: it goes with the next successful
  release's prune);
- removed: every other image labelled as the platform's for that app, and the app's stopped
  containers that neither serve nor drain.

Serving is always among the N newest (it is the last one that took traffic), so after a deploy
exactly N images remain; N + 1 only while a release older than those still drains, or when the
serving container runs an image the history lost. Nothing here decides what is the platform's:
the caller passes only images and containers labelled so (agent.labels).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

# How long an image built after the last switch counts as "for a deploy to come": the deploy
# follows its build by seconds; one that never came is pruned with the next prune past this.
PENDING_BUILD_SECONDS = 6 * 3600
# Images created up to this long before the last switch still count as built after it
# (the engine stamps whole seconds; the agent's clock reads fractions).
CLOCK_SLACK_SECONDS = 2.0


@dataclass(frozen=True)
class Release:
    """One release that took traffic, as the agent recorded it at the switch."""

    deployment_id: int
    image_id: str
    commit_sha: str = ""
    time: float = 0.0


@dataclass(frozen=True)
class History:
    """An app's releases, oldest first, and the N of its last deploy."""

    retain: int
    releases: tuple[Release, ...] = ()

    @property
    def last_switch(self) -> float:
        return self.releases[-1].time if self.releases else 0.0


@dataclass(frozen=True)
class Image:
    id: str
    tags: tuple[str, ...] = ()
    commit_sha: str = ""
    created: float = 0.0
    # Bytes only this image holds (what removing it frees); its full size for people.
    unique_bytes: int = 0
    size_bytes: int = 0


@dataclass(frozen=True)
class Container:
    id: str
    name: str
    image_id: str
    deployment_id: int = 0
    running: bool = False
    # Routed by the front door, or an old release the router still drains.
    serving: bool = False
    draining: bool = False


@dataclass(frozen=True)
class Removal:
    kind: str  # "image" | "container"
    id: str
    name: str
    reason: str
    deployment_id: int = 0
    size_bytes: int = 0


@dataclass(frozen=True)
class Plan:
    removals: tuple[Removal, ...] = ()
    # image id -> why it stays
    kept: dict[str, str] = field(default_factory=dict)


def retained_images(history: History) -> list[str]:
    """The distinct images of the last `history.retain` releases, newest first."""
    out: list[str] = []
    for release in reversed(history.releases):
        if release.image_id and release.image_id not in out:
            out.append(release.image_id)
            if len(out) >= max(1, history.retain):
                break
    return out


def releases_of(history: History, image_id: str) -> list[int]:
    """The deployments that released `image_id`, newest first."""
    return [r.deployment_id for r in reversed(history.releases) if r.image_id == image_id]


def plan(history: History, images: list[Image], containers: list[Container], *,
         now: float, pending: Iterable[str] = ()) -> Plan:
    """What to remove of one app, given its history and what the engine holds of it.
    `pending`: images a build handed out lately (built, or an existing one reused) whose deploy
    has not switched yet; an image's own creation time does not tell (a build that reuses an
    image, or one made wholly from the build cache, keeps the old image's time)."""
    kept: dict[str, str] = {image_id: "built for a deploy still to come" for image_id in pending}
    for rank, image_id in enumerate(retained_images(history), start=1):
        kept[image_id] = f"release {rank} of the last {history.retain}"
    removals: list[Removal] = []
    for c in containers:
        if c.running or c.serving or c.draining:
            kept.setdefault(c.image_id, "serving" if c.serving else
                            "draining" if c.draining else f"used by running container {c.name}")
        else:
            removals.append(Removal("container", c.id, c.name, "stopped, neither serves nor drains",
                                    c.deployment_id))
    since = history.last_switch - CLOCK_SLACK_SECONDS
    for image in images:
        if image.id in kept:
            continue
        deployments = releases_of(history, image.id)
        # Only an image that never took traffic can be for a deploy to come (one that did and is
        # built again for one is in `pending`): a release made within the clock slack of the last
        # switch is past retention like any other.
        if not deployments and image.created >= since and now - image.created < PENDING_BUILD_SECONDS:
            kept[image.id] = "built after the last release: for a deploy still to come"
            continue
        reason = (f"older than the last {history.retain} releases" if deployments
                  else "never released (its deploy failed or never came)")
        removals.append(Removal("image", image.id, ", ".join(image.tags) or image.id[:19], reason,
                                deployments[0] if deployments else 0, image.unique_bytes))
    return Plan(tuple(removals), kept)

