"""The control-plane side of webhooks: idempotency keys, superseding, the per-app webhook secret."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from serversinc.v1 import app_service_pb2, deployment_pb2, deployment_service_pb2

from tests.support.sample_app import DOCKERFILE, commit_files, commit_version, slow_step

S = deployment_pb2


def create(control_plane, app, **kw):
    return control_plane.deployments.CreateDeployment(deployment_service_pb2.CreateDeploymentRequest(parent=f"apps/{app}", **kw))


def test_a_repeated_request_id_creates_nothing_and_names_the_first(control_plane, sample_url, app_name):
    control_plane.create_app(app_name, sample_url)
    first = create(control_plane, app_name, request_id="delivery-1:" + app_name, delivery_id="delivery-1",
                   pusher="octocat", commit_message="Fix the thing", trigger=S.DEPLOYMENT_TRIGGER_WEBHOOK)
    assert first.delivery_id == "delivery-1" and first.pusher == "octocat" and first.commit_message == "Fix the thing"
    with pytest.raises(grpc.RpcError) as info:
        create(control_plane, app_name, request_id="delivery-1:" + app_name)
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
    detail = error_details_pb2.ErrorInfo()
    rpc_status.from_call(info.value).details[0].Unpack(detail)
    assert detail.metadata["deployment"] == first.name
    listed = control_plane.deployments.ListDeployments(deployment_service_pb2.ListDeploymentsRequest(parent=f"apps/{app_name}"))
    assert [d.name for d in listed.deployments] == [first.name]
    control_plane.wait(first.name)


def test_a_newer_push_supersedes_the_queued_ones(control_plane, sample_repo, sample_url, app_name):
    control_plane.create_app(app_name, sample_url)
    commit_files(sample_repo, {"Dockerfile": DOCKERFILE + slow_step(2)}, "slow")
    running = create(control_plane, app_name)
    control_plane.wait_state(running.name, lambda d: d.state == S.DEPLOYMENT_STATE_RUNNING)
    shas = [commit_version(sample_repo, f"v{i}") for i in (2, 3, 4)]
    pushes = [create(control_plane, app_name, commit_sha=sha, rebuild=True, supersede_queued=True,
                     trigger=S.DEPLOYMENT_TRIGGER_WEBHOOK) for sha in shas]
    assert control_plane.wait(running.name).state == S.DEPLOYMENT_STATE_SUCCEEDED  # a running one is never superseded
    newest = control_plane.wait(pushes[-1].name)
    assert newest.state == S.DEPLOYMENT_STATE_SUCCEEDED and newest.commit_sha == shas[-1]
    for older in pushes[:-1]:
        ended = control_plane.get(older.name)
        assert ended.state == S.DEPLOYMENT_STATE_SUPERSEDED
        assert ended.superseded_by in {p.name for p in pushes[1:]}
        events = control_plane.events(older.name)
        assert events[-1].state == S.DEPLOYMENT_STATE_SUPERSEDED and "superseded by" in events[-1].message


def test_each_app_has_its_own_webhook_secret(control_plane, sample_url, control_plane_cli):
    control_plane.create_app("one", sample_url)
    control_plane.create_app("two", sample_url)
    one = control_plane.apps.GetAppWebhook(app_service_pb2.GetAppWebhookRequest(name="one"))
    two = control_plane.apps.GetAppWebhook(app_service_pb2.GetAppWebhookRequest(name="two"))
    assert one.url.endswith("/webhooks/github/one") and len(one.secret) >= 32 and one.secret != two.secret
    shown = control_plane_cli(control_plane.address).json("apps", "webhook", "one", "--json")
    assert shown == {"app": "one", "url": one.url, "secret": one.secret, "notification_secret": one.notification_secret}
    assert one.notification_secret not in (one.secret, two.notification_secret)
    # The secret is not part of the app resource.
    app = control_plane.apps.GetApp(app_service_pb2.GetAppRequest(name="one"))
    assert one.secret not in str(app)
