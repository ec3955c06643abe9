"""What to build and what an agent says about itself: plain values both sides of the agent wire use.

The control plane builds a `BuildSpec` from a deployment and hands it to its agent client; the
agent's servicer builds the same type from the request it receives. `AgentInfo` is the agent's
answer to GetInfo, reported by the agent and read by the control plane.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BuildSpec:
    """One image build: `commit_sha` of `repo_url`, tagged for `app`; `force` rebuilds an image
    that already exists. Paths are relative to the repository ("" is its root)."""

    app: str
    deployment_id: int
    repo_url: str
    commit_sha: str
    dockerfile: str = "Dockerfile"
    context_dir: str = ""
    force: bool = False
    # Limits of the build's containers (0: none), as the app's containers get them.
    memory_bytes: int = 0
    cpu_millis: int = 0


@dataclass(frozen=True)
class AgentInfo:
    agent_version: str
    docker_version: str
    hostname: str
    running_containers: int
