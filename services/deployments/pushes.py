"""The older-commit rule: a push delivery for a commit older than the newest push seen is not deployed.

Push order comes from the pushes themselves, not from git: every webhook deployment records the
commit pushed (`after`) and the branch head it replaced (`before`). GitHub's pushes of a branch form
a chain, each `before` being the previous push's `after`, so:
  * a push whose `before` is the newest push's `after` continues the chain: it is new, even when it
    names an old commit (a force-push back to it is a deliberate rollback);
  * otherwise a commit this app already deployed or was pushed past (some push's `before`), other
    than the newest push's own, is older than the newest push: a replay of an old delivery (GitHub's
    "Redeliver", or a fresh delivery id), or a delivery that arrived after a newer one.
Why not git ancestry: it needs a fetch of the repository on the control plane in the webhook's
hot path (10 s budget, remotes that hang), while the chain is exact for what GitHub sends and costs
an index probe read with the app (the newest push) and, only for a push off the chain, a second
(`seen`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Push:
    """A recorded push: the deployment it made, the commit pushed and the head it replaced."""

    deployment_id: int
    commit: str
    before: str


def seen_decides(commit: str, before: str, newest: Push | None) -> bool:
    """Whether the push may be older than the newest, which only `seen` settles: not the first push,
    nor the newest again, nor the next of the chain (the create path asks the database only then)."""
    if newest is None or commit == newest.commit:
        return False
    return not (before and before == newest.commit)


def older_than_newest(commit: str, before: str, newest: Push | None, seen: bool) -> str:
    """Why `commit` (pushed over `before`) must not be deployed, or "" when it may.
    `seen`: the app already deployed `commit`, or a recorded push replaced it."""
    if not seen_decides(commit, before, newest) or not seen:
        return ""
    return (f"commit {commit[:12]} is older than {newest.commit[:12]}, the newest push seen for the branch "
            f"(deployments/{newest.deployment_id}): not redeployed")
