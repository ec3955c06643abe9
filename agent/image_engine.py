"""Docker adapter for retention: the platform's images and containers of an app, disk use, removal.

Only what carries the platform's labels (agent.labels MANAGED + APP) is ever listed here, so
nothing the platform did not make can reach a removal: a host's own images, another tool's
containers and untagged images of other builds stay out of every list.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import docker

from agent import labels as L
from agent.docker_engine import EngineError
from agent.retention import Container, Image
from common import registry as registry_rules


@dataclass(frozen=True)
class DiskUsage:
    """The engine's disk use, as `docker system df` counts it."""

    images_bytes: int
    containers_bytes: int
    build_cache_bytes: int
    # Dangling build cache: not in use by a build, what prune_builds frees.
    build_cache_reclaimable: int
    # image id -> bytes only it holds (Size - SharedSize)
    unique: dict[str, int]

    @property
    def total_bytes(self) -> int:
        return self.images_bytes + self.containers_bytes + self.build_cache_bytes


DF_PATIENCE = 30.0


def _error(exc: docker.errors.APIError) -> EngineError:
    return EngineError(str(exc.explanation or exc))


class ImageEngine:
    def __init__(self, client: docker.DockerClient, agent_id: str = "") -> None:
        self.api = client.api
        self.agent_id = agent_id

    def disk_usage(self) -> DiskUsage:
        """One `system df`. The engine runs one at a time and refuses a second meanwhile ("a disk
        usage operation is already running": another prune, a user's `docker system df`), so a
        refused one is asked again, for up to DF_PATIENCE seconds."""
        until = time.monotonic() + DF_PATIENCE
        while True:
            try:
                df = self.api.df()
                break
            except docker.errors.APIError as exc:
                if "already running" not in str(exc) or time.monotonic() >= until:
                    raise _error(exc) from exc
                time.sleep(0.2)
        images = df.get("Images") or []
        cache = df.get("BuildCache") or []
        unique = {}
        for i in images:
            shared = i.get("SharedSize")
            unique[i["Id"]] = max(0, int(i.get("Size") or 0) - max(0, int(shared or 0)))
        return DiskUsage(
            images_bytes=int(df.get("LayersSize") or 0),
            containers_bytes=sum(int(c.get("SizeRw") or 0) for c in df.get("Containers") or []),
            build_cache_bytes=sum(int(b.get("Size") or 0) for b in cache if not b.get("Shared")),
            build_cache_reclaimable=sum(int(b.get("Size") or 0) for b in cache
                                        if not b.get("InUse") and not b.get("Shared")),
            unique=unique)

    def image_id(self, ref: str) -> str | None:
        try:
            return self.api.inspect_image(ref)["Id"]
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.APIError as exc:
            raise _error(exc) from exc

    def app_images(self, app: str, unique: dict[str, int] | None = None) -> list[Image]:
        """The app's platform images (tagged or not), newest first."""
        try:
            rows = self.api.images(filters={"label": [f"{L.MANAGED}=true", f"{L.APP}={app}"]})
        except docker.errors.APIError as exc:
            raise _error(exc) from exc
        images = [Image(id=r["Id"], tags=tuple(t for t in r.get("RepoTags") or () if t != "<none>:<none>"),
                        commit_sha=(r.get("Labels") or {}).get(L.COMMIT, ""),
                        created=float(r.get("Created") or 0),
                        unique_bytes=(unique or {}).get(r["Id"], int(r.get("Size") or 0)),
                        size_bytes=int(r.get("Size") or 0))
                  for r in rows]
        return sorted(images, key=lambda i: i.created, reverse=True)

    def app_containers(self, app: str) -> list[Container]:
        """The app's platform containers of this agent (running or not); serving/draining unset."""
        filters = [f"{L.MANAGED}=true", f"{L.APP}={app}"]
        if self.agent_id:
            filters.append(f"{L.AGENT}={self.agent_id}")
        try:
            rows = self.api.containers(all=True, filters={"label": filters})
        except docker.errors.APIError as exc:
            raise _error(exc) from exc
        out = []
        for r in rows:
            labels = r.get("Labels") or {}
            deployment = labels.get(L.DEPLOYMENT, "0")
            out.append(Container(id=r["Id"], name=((r.get("Names") or ["/"])[0]).lstrip("/"),
                                 image_id=r.get("ImageID", ""),
                                 deployment_id=int(deployment) if deployment.isdigit() else 0,
                                 running=r.get("State") in ("running", "restarting", "paused")))
        return out

    def remove_image(self, image: Image, app: str) -> bool:
        """Remove the app's tags of the image (`<app>:*`, and `REGISTRY/serversinc/<app>:*` of a
        release this server pushed), or the image itself when untagged (a release pulled by
        digest has no tag); True when the image is gone. A tag of another repository keeps it
        (someone else's name for it), and so does a container of another agent that uses it (a
        conflict, not forced)."""
        ours = [t for t in image.tags if registry_rules.is_app_repository(registry_rules.tag_repository(t), app)]
        try:
            for ref in ours or [image.id]:
                self.api.remove_image(ref)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if "conflict" in str(exc).lower() or exc.status_code == 409:
                return False
            raise _error(exc) from exc
        try:
            self.api.inspect_image(image.id)
            return False
        except docker.errors.ImageNotFound:
            return True
        except docker.errors.APIError as exc:
            raise _error(exc) from exc

    def remove_container(self, container_id: str) -> None:
        try:
            self.api.remove_container(container_id, force=False)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            raise _error(exc) from exc

    def prune_build_cache(self) -> int:
        """Remove dangling build cache (not in use by a build); the bytes freed."""
        try:
            return int((self.api.prune_builds() or {}).get("SpaceReclaimed") or 0)
        except docker.errors.APIError as exc:
            raise _error(exc) from exc
