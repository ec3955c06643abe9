"""Fault 6: the control plane SIGKILLed during each phase of a redeploy, then restarted, under
steady keep-alive load on the front door.

Each case ends with one terminal state that matches what serves (the deployment SUCCEEDED iff its
container is the one serving), exactly one container serving, and 0 failed requests. The phase
is hit by following the deployment's own events and killing at the PHASE event; the app's settings
make that phase last long enough (a slow build step, a high healthy threshold, a drain, an old
container that ignores its stop signal until the grace period ends).
"""

from __future__ import annotations

import pytest
from serversinc.v1 import app_pb2, app_service_pb2, app_service_pb2_grpc, deployment_pb2
from serversinc.v1 import deployment_service_pb2 as ds
from serversinc.v1 import deployment_service_pb2_grpc
from tugboat.v1 import tugboat_pb2

from tests.integration.conftest import TERMINAL, token_channel
from tests.support.agent_calls import front_get, wait_until
from tests.support.api_process import free_address, start_api, stop_api
from tests.support.sample_app import commit_files, repo_url, slow_step
from tests.support.zd_app import DOCKERFILE, body, commit_zd_version, make_zd_repo
from tests.support.zd_load import KeepAliveClient

S = deployment_pb2

# The phase to kill in -> the app settings that make it last a second or two.
CASES = {
    "BUILD": {},
    "START": {},
    "HEALTH": {"health_interval_ms": 250, "healthy_threshold": 8},
    "SWITCH": {"drain_seconds": 2},
    "STOP_OLD": {"stop_signal": "SIGWINCH", "stop_grace_seconds": 2},  # busybox httpd ignores SIGWINCH
}


class Api:
    """The control plane process on `home` and stubs to it; `kill()` and `restart()` it."""

    def __init__(self, home, agent):
        self.home, self.agent, self.address = home, agent, free_address()
        self.proc = start_api(home, self.address, agent)
        self._connect()

    def _connect(self):
        self.channel = token_channel(self.address, (self.home / "api-token").read_text().strip())
        self.apps = app_service_pb2_grpc.AppServiceStub(self.channel)
        self.deployments = deployment_service_pb2_grpc.DeploymentServiceStub(self.channel)

    def kill(self):
        self.channel.close()
        self.proc.kill()
        self.proc.wait(10)

    def restart(self):
        self.proc = start_api(self.home, self.address, self.agent)
        self._connect()

    def deploy(self, app: str) -> deployment_pb2.Deployment:
        return self.deployments.CreateDeployment(ds.CreateDeploymentRequest(parent=f"apps/{app}"))

    def follow(self, name: str, timeout: float = 90):
        return self.deployments.WatchDeployment(ds.WatchDeploymentRequest(name=name), timeout=timeout)

    def finished(self, name: str) -> tuple[deployment_pb2.Deployment, list[str]]:
        """The deployment once terminal, and every event message of its history."""
        messages = [e.message for e in self.follow(name)]
        dep = self.deployments.GetDeployment(ds.GetDeploymentRequest(name=name))
        assert dep.state in TERMINAL, dep
        return dep, messages

    def close(self):
        self.channel.close()
        stop_api(self.proc)


@pytest.mark.parametrize("phase", list(CASES))
def test_killed_during_a_redeploy_phase_ends_truthfully_with_no_failed_request(tmp_path, agent, app_name, phase):
    repo = make_zd_repo(tmp_path / "repo", "v1")
    home = tmp_path / "home"
    home.mkdir()
    api = Api(home, agent)
    load = KeepAliveClient(agent.front_door, f"{app_name}.localhost", max_seconds=120)
    try:
        api.apps.CreateApp(app_service_pb2.CreateAppRequest(app=app_pb2.App(
            name=app_name, repo_url=repo_url(repo), branch="main", port=8080, **CASES[phase])))
        first, _ = api.finished(api.deploy(app_name).name)
        assert first.state == S.DEPLOYMENT_STATE_SUCCEEDED, first.failure_reason
        load.start()
        assert wait_until(lambda: any(s.body == body("v1") for s in load.samples), timeout=10)

        commit_zd_version(repo, "v2")
        if phase == "BUILD":
            dockerfile = DOCKERFILE.format(healthcheck="") + slow_step(2)
            commit_files(repo, {"Dockerfile": dockerfile}, "v2, slow build")
        second = api.deploy(app_name)
        target = S.DeploymentPhase.Value(f"DEPLOYMENT_PHASE_{phase}")
        for event in api.follow(second.name):
            if event.kind == S.EVENT_KIND_PHASE and event.phase == target:
                break
        else:
            pytest.fail(f"{second.name} ended before {phase}")
        api.kill()

        api.restart()
        done, messages = api.finished(second.name)
        assert any("resuming (attempt" in m for m in messages), messages  # killed mid-run
        serving = [c for c in agent.stub.ListContainers(tugboat_pb2.ListContainersRequest(app=app_name),
                                                        timeout=10).containers
                   if c.serving and c.state == "running"]
        assert len(serving) == 1, serving

        def running_containers():
            return [c for c in agent.stub.ListContainers(
                tugboat_pb2.ListContainersRequest(app=app_name), timeout=10).containers
                if c.state == "running"]
        # Past the switch the agent still retires the old release, even with its stream gone.
        assert wait_until(lambda: len(running_containers()) == 1, timeout=30), running_containers()
        succeeded = done.state == S.DEPLOYMENT_STATE_SUCCEEDED
        assert succeeded == (serving[0].deployment_id == done.id), (done.state, done.failure_reason, serving)
        expected = body("v2" if succeeded else "v1")
        assert front_get(agent.front_door, f"{app_name}.localhost") == (200, expected)
        assert wait_until(lambda: load.samples and load.samples[-1].body == expected, timeout=10)
    finally:
        samples = load.stop() if load.is_alive() else list(load.samples)
        api.close()
    failures = [s for s in samples if s.status != 200]
    assert samples and failures == [], failures[:5]
