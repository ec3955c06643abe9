"""The WebSocket/SSE app on a real agent: build its versions, deploy them with a drain deadline."""

from __future__ import annotations

import pytest

from tests.support.agent_calls import build, deploy_request, deploy_seen
from tests.support.ws_app import commit_ws_version, make_ws_repo

# A deploy's stream follows the old release's drain this long, then the drain goes on in the
# background: short here, so five deploys in a row do not each wait out the follow window.
FOLLOW_SECONDS = "2"


class WsApp:
    def __init__(self, agent, app: str, tmp_path) -> None:
        self.agent, self.app = agent, app
        self.repo = make_ws_repo(tmp_path / f"repo-{app}", "v1")
        self.shas = {"v1": self.repo.head.commit.hexsha}
        self.next_id = 2000
        self._build("v1")

    def _build(self, version: str) -> None:
        self.next_id += 1
        last = build(self.agent.stub, self.app, self.repo, self.shas[version], self.next_id)[-1]
        assert last.error == "", last.error

    def add_version(self, version: str) -> None:
        self.shas[version] = commit_ws_version(self.repo, version)
        self._build(version)

    def deploy(self, version: str, drain_seconds: int):
        self.next_id += 1
        request = deploy_request(self.app, self.shas[version], self.next_id, port=8080,
                                 drain_seconds=drain_seconds)
        return [deploy_seen(ev) for ev in self.agent.stub.Deploy(request, timeout=180)]

    @property
    def host(self) -> str:
        return f"{self.app}.localhost"


@pytest.fixture(autouse=True)
def short_follow(monkeypatch):
    monkeypatch.setenv("TUGBOAT_DRAIN_FOLLOW_SECONDS", FOLLOW_SECONDS)


@pytest.fixture
def ws_app(agent, app_name, tmp_path):
    return WsApp(agent, app_name, tmp_path)
