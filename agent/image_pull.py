"""The Deploy's pull hook: a release built on another server is pulled by digest before START.

A deploy whose image is a digest ref (REPOSITORY@sha256:…) with pull credentials, and that is
not on this engine yet, pulls exactly those bytes first; a pull that fails fails the START phase
with the registry's reason, before anything started, so the old release keeps serving. The
pulled image is handed to retention as a build's is (agent.pruner.built): kept until it takes
traffic, or for the pending window when its deploy fails, like one built here.
"""

from __future__ import annotations

from collections.abc import Iterator

from agent.docker_engine import EngineError
from common import registry as R


class PullFailed(Exception):
    """The image could not be pulled; the message says why, for people."""


def pull_if_missing(releaser, spec) -> Iterator[str]:
    """Lines for the deploy's log while it pulls; nothing when there is nothing to pull."""
    login = spec.pull_login
    if login is None or R.split_digest_ref(spec.image) is None:
        return
    images = releaser.registry_images
    if images is None:
        raise PullFailed(f"{spec.image} is not on this server and this agent cannot pull images")
    try:
        if images.present(spec.image):
            return
        yield f"pulling {spec.image} by digest from {login.address}"
        image_id = images.pull(spec.image, login)
    except (EngineError, ValueError) as exc:
        raise PullFailed(f"could not pull the release's image: {exc}") from exc
    yield f"pulled {spec.image} (image {image_id[:19]})"
    if releaser.retention is not None:
        releaser.retention.built(spec.app, spec.image, image_id)
