"""What an agent reports of retention, as plain data (services.agents.client fills them)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PrunedItem:
    kind: str  # IMAGE | CONTAINER | BUILD_CACHE | REPOSITORY_CACHE
    app: str
    id: str
    name: str
    deployment_id: int
    size_bytes: int
    reason: str


@dataclass(frozen=True)
class PruneResult:
    dry_run: bool
    items: tuple[PrunedItem, ...] = ()
    bytes_freed: int = 0
    # (app, why it was left alone)
    skipped: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class AgentImage:
    id: str
    tags: tuple[str, ...]
    commit_sha: str
    retained: bool
    deployment_ids: tuple[int, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class AppImages:
    images: tuple[AgentImage, ...]
    # The N of the app's last deploy on that agent (0: the agent never released it).
    retain_releases: int = 0
