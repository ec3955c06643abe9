"""Many open deployment watches: the control plane keeps answering, and every watcher gets
every event of the deployment once, in order, ending with the terminal one."""

from __future__ import annotations

import asyncio
import threading
import uuid

import grpc
from serversinc.v1 import (
    app_service_pb2,
    deployment_pb2,
    deployment_service_pb2,
    deployment_service_pb2_grpc,
)

from client.connection import auth_metadata
from common.api_tls import ca_path, read_ca
from tests.support.agent_calls import wait_until
from tests.support.sample_app import DOCKERFILE, commit_files, repo_url

S = deployment_pb2
WATCHERS = 200
DEADLINE = 10  # seconds: what a dashboard or CLI call allows; the threaded API missed it at 64 watchers

# A build that keeps its deployment RUNNING (a TICK line every 0.2 s) until it is cancelled.
TICKING = DOCKERFILE + ('RUN ["/bin/busybox","sh","-c","echo {nonce}; i=0; while [ $i -lt 600 ]; '
                        'do echo TICK $i; /bin/busybox usleep 200000; i=$((i+1)); done"]\n')


class Watchers:
    """`count` WatchDeployment streams of one deployment on a grpc.aio client in its own thread."""

    def __init__(self, address: str, token: str, name: str, count: int) -> None:
        self.events: list[list[deployment_pb2.DeploymentEvent]] = [[] for _ in range(count)]
        self.errors: list[grpc.RpcError] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_until_complete,
                                        args=(self._watch(address, token, name),), daemon=True)
        self._thread.start()

    async def _watch(self, address: str, token: str, name: str) -> None:
        credentials = grpc.ssl_channel_credentials(read_ca(ca_path()))  # the session CA (tests/conftest.py)
        async with grpc.aio.secure_channel(address, credentials) as channel:
            stub = deployment_service_pb2_grpc.DeploymentServiceStub(channel)

            async def one(sink: list) -> None:
                try:
                    async for event in stub.WatchDeployment(
                            deployment_service_pb2.WatchDeploymentRequest(name=name),
                            metadata=auth_metadata(token), timeout=120):
                        sink.append(event)
                except grpc.RpcError as err:
                    self.errors.append(err)

            await asyncio.gather(*(one(sink) for sink in self.events))

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()


def test_two_hundred_watchers_block_nothing_and_each_get_every_event(control_plane, sample_repo, app_name):
    control_plane.create_app(app_name, repo_url(sample_repo))
    commit_files(sample_repo, {"Dockerfile": TICKING.format(nonce=uuid.uuid4().hex)}, "a build that ticks")
    held = control_plane.deploy(app_name)
    token = control_plane.platform.settings.home.joinpath("api-token").read_text().strip()

    watchers = Watchers(control_plane.address, token, held.name, WATCHERS)
    try:
        # Every stream is open and has seen the build tick: the deployment is held RUNNING.
        assert wait_until(lambda: all(any(e.message.startswith("TICK") for e in list(w))
                                      for w in watchers.events), timeout=60), watchers.errors
        assert control_plane.get(held.name).state == S.DEPLOYMENT_STATE_RUNNING

        # Other calls answer within their deadline while all of them stay open.
        listed = control_plane.apps.ListApps(app_service_pb2.ListAppsRequest(), timeout=DEADLINE)
        assert app_name in [a.name for a in listed.apps]
        queued = control_plane.deployments.CreateDeployment(
            deployment_service_pb2.CreateDeploymentRequest(parent=f"apps/{app_name}"), timeout=DEADLINE)
        assert queued.state == S.DEPLOYMENT_STATE_QUEUED
        control_plane.deployments.CancelDeployment(
            deployment_service_pb2.CancelDeploymentRequest(name=queued.name), timeout=DEADLINE)
        control_plane.deployments.CancelDeployment(
            deployment_service_pb2.CancelDeploymentRequest(name=held.name), timeout=DEADLINE)
        assert watchers.join(timeout=60), "a watcher did not end with the deployment"
    finally:
        if not watchers.join(0):  # a failed check above: end the build so the streams end
            try:
                control_plane.deployments.CancelDeployment(
                    deployment_service_pb2.CancelDeploymentRequest(name=held.name), timeout=DEADLINE)
            except grpc.RpcError:
                pass
            watchers.join(timeout=30)

    assert watchers.errors == []
    stored = [(e.seq, e.kind, e.message) for e in control_plane.events(held.name)]
    assert stored[-1][1] == S.EVENT_KIND_STATE
    assert control_plane.get(held.name).state == S.DEPLOYMENT_STATE_CANCELLED
    for seen in watchers.events:
        assert [(e.seq, e.kind, e.message) for e in seen] == stored


# Prints one line, then serves: each follower's tail of 1 is that line.
READY_THEN_SERVE = DOCKERFILE.replace(
    'CMD ["/bin/busybox","httpd","-f","-p","8080","-h","/www"]',
    'CMD ["/bin/busybox","sh","-c","echo ready; exec /bin/busybox httpd -f -p 8080 -h /www"]')
LOG_FOLLOWERS = 40  # more than the API's pool threads: each used to hold one while it waited


def test_log_followers_through_the_api_hold_no_thread(control_plane, sample_repo, app_name):
    assert READY_THEN_SERVE != DOCKERFILE
    commit_files(sample_repo, {"Dockerfile": READY_THEN_SERVE}, "prints a line, then serves")
    control_plane.create_app(app_name, repo_url(sample_repo))
    done = control_plane.wait(control_plane.deploy(app_name).name)
    assert done.state == S.DEPLOYMENT_STATE_SUCCEEDED, done.failure_reason

    lines: list[list[str]] = [[] for _ in range(LOG_FOLLOWERS)]
    calls = [control_plane.apps.StreamAppLogs(
        app_service_pb2.StreamAppLogsRequest(name=f"apps/{app_name}", follow=True, tail=1))
        for _ in range(LOG_FOLLOWERS)]

    def drain(call, into):
        try:
            for line in call:
                into.append(line.text)
        except grpc.RpcError:
            pass  # cancelled at the end of the test
    threads = [threading.Thread(target=drain, args=(c, out), daemon=True) for c, out in zip(calls, lines)]
    for t in threads:
        t.start()
    try:
        # Every follower is relayed (it got its tail) and stays open, waiting for more.
        assert wait_until(lambda: all(out == ["ready"] for out in lines), timeout=30), lines
        listed = control_plane.apps.ListApps(app_service_pb2.ListAppsRequest(), timeout=DEADLINE)
        assert app_name in [a.name for a in listed.apps]
        assert all(t.is_alive() for t in threads)  # still following while the API answered
        again = control_plane.deploy(app_name)  # unary calls and a whole deploy still go through
        assert control_plane.wait(again.name).state == S.DEPLOYMENT_STATE_SUCCEEDED
    finally:
        for c in calls:
            c.cancel()
        for t in threads:
            t.join(10)
