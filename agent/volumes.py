"""An app's named volumes on its server: what they are called, whose they are, when they go.

An app's volume `data` is the Docker named volume `serversinc-<app>-data`, created on first use
with the platform's labels (managed, the app, the app's own name for it). The labels, never the
name, say whose a volume is: a volume of that name the platform did not make, or one made for
another app (`serversinc-a-b-c` is app `a-b`'s `c` and app `a`'s `b-c`), is never mounted and
never removed; the deploy fails at START and says why.

A volume outlives every container: deploys and rollbacks mount it again (a rollback's release
record carries its volumes), and only `remove(..., delete=True)` (DeleteApp with
`delete_volumes`) removes it. Without it the volumes are kept and named, so the user can delete
them later (the same app name with `--delete-volumes`, or `docker volume rm` on the server).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from agent import labels as L
from agent.docker_engine import DockerEngine, EngineError, VolumeRecord

PREFIX = "serversinc-"


class VolumeNotOurs(EngineError):
    """A volume of the name the app needs exists but the platform did not make it for the app."""


def docker_name(app: str, name: str) -> str:
    """The Docker volume the app's volume `name` is."""
    return f"{PREFIX}{app}-{name}"


def volume_labels(app: str, name: str, agent_id: str = "") -> dict[str, str]:
    labels = {L.MANAGED: "true", L.APP: app, L.VOLUME: name}
    if agent_id:
        labels[L.AGENT] = agent_id  # which agent made it (information only: the app owns it)
    return labels


def owned_by(record: VolumeRecord, app: str, name: str) -> bool:
    """The platform made this volume as `app`'s volume `name` (the labels agree, all three)."""
    labels = record.labels
    return (labels.get(L.MANAGED) == "true" and labels.get(L.APP) == app
            and labels.get(L.VOLUME) == name)


def ensure(engine: DockerEngine, app: str, volumes: Iterable[tuple[str, str]],
           agent_id: str = "") -> tuple[tuple[str, str], ...]:
    """Each (name, path) as (docker volume, path) to mount, the volume created if missing.

    Raises VolumeNotOurs for a volume of that name that is not the app's (nothing is created
    or mounted then), EngineError when the engine fails."""
    mounts = []
    for name, path in volumes:
        volume = docker_name(app, name)
        record = engine.volume(volume)
        if record is None:
            record = engine.create_volume(volume, volume_labels(app, name, agent_id))
        if not owned_by(record, app, name):
            owner = record.labels.get(L.APP) if record.labels.get(L.MANAGED) == "true" else ""
            raise VolumeNotOurs(
                f"volume {volume} exists but is not {app}'s volume {name!r} "
                + (f"(it is app {owner!r}'s)" if owner else "(the platform did not make it)")
                + ": it is left alone; rename the volume in the app's settings, or remove or "
                "rename that Docker volume")
        mounts.append((volume, path))
    return tuple(mounts)


@dataclass(frozen=True)
class VolumeRemoval:
    """What RemoveApp did to the app's volumes (Docker names)."""

    removed: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()


def remove(engine: DockerEngine, app: str, *, delete: bool) -> VolumeRemoval:
    """The app's volumes (by label, never by name) removed when `delete`, else only listed.

    Called after the app's containers are removed, so none is in use by the app."""
    ours = sorted(v.name for v in engine.volumes(app))
    if not delete:
        return VolumeRemoval(kept=tuple(ours))
    for volume in ours:
        engine.remove_volume(volume)
    return VolumeRemoval(removed=tuple(ours))

