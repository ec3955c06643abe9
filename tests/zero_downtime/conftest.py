"""Shared helpers for the zero-downtime tests: build the app's versions through the agent."""

from __future__ import annotations

import pytest

from common.phases import Phase
from tests.support.agent_calls import DeploySeen, build, deploy_request, deploy_seen
from tests.support.zd_app import commit_zd_version, make_zd_repo


class ZdApp:
    """One app on one agent: its repo, built versions (version -> sha) and deploy helper."""

    def __init__(self, agent, app: str, tmp_path, *, docker_healthcheck: bool = False) -> None:
        self.agent, self.app = agent, app
        self.repo = make_zd_repo(tmp_path / f"repo-{app}", "v1", docker_healthcheck=docker_healthcheck)
        self.shas = {"v1": self.repo.head.commit.hexsha}
        self.next_id = 1000
        self._build("v1")

    def _build(self, version: str) -> str:
        self.next_id += 1
        last = build(self.agent.stub, self.app, self.repo, self.shas[version], self.next_id)[-1]
        assert last.error == "", last.error
        return self.shas[version]

    def add_version(self, version: str, **kwargs) -> str:
        self.shas[version] = commit_zd_version(self.repo, version, **kwargs)
        return self._build(version)

    def deploy_events(self, version: str, **fields):
        """Stream a Deploy; yields the events as they come (for timing the SWITCH)."""
        self.next_id += 1
        sha = self.shas[version]
        request = deploy_request(self.app, sha, self.next_id, port=8080, **fields)
        return (deploy_seen(ev) for ev in self.agent.stub.Deploy(request, timeout=120))

    def deploy(self, version: str, **fields) -> list:
        return list(self.deploy_events(version, **fields))

    @property
    def host(self) -> str:
        return f"{self.app}.localhost"


@pytest.fixture
def zd_app(agent, app_name, tmp_path):
    return ZdApp(agent, app_name, tmp_path)


def done(events) -> DeploySeen:
    last = events[-1]
    assert last.phase is Phase.DONE and not last.failure, (last.failure, last.error)
    return last

