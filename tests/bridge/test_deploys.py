"""Signed pushes through the real bridge deploy for real: exactly the pushed commit, recorded with
its delivery, pusher and message; every app on the repository and branch; only the newest of a
burst; and a redelivery creates nothing."""

from __future__ import annotations

from serversinc.v1 import deployment_pb2

from tests.integration.conftest import fetch
from tests.support.sample_app import DOCKERFILE, commit_files, commit_version, slow_step
from tests.bridge.conftest import GLOBAL_SECRET
from tests.bridge.github import new_delivery, push_payload

S = deployment_pb2


def test_a_push_deploys_exactly_the_pushed_commit(bridge, sample_repo, sample_url, app_name):
    cp = bridge.cp
    cp.create_app(app_name, sample_url)
    secret = bridge.secret(app_name)
    before = sample_repo.head.commit.hexsha
    sha = commit_version(sample_repo, "v2")
    commit_version(sample_repo, "v3")  # the branch head moves on: the push's commit must still be the one deployed
    payload = push_payload(repo_url=sample_url, after=sha, before=before, message="release v2\n\nwith notes",
                           pusher="monalisa")
    delivery = new_delivery()
    path = f"/webhooks/github/{app_name}"

    # A rejected delivery records nothing, so the same delivery id sent correctly later is handled.
    rejected = bridge.send(path, "push", payload, "not-the-secret", delivery=delivery)
    assert rejected.status_code == 401 and bridge.deployments(app_name) == []

    r = bridge.send(path, "push", payload, secret, delivery=delivery)
    assert r.status_code == 202, r.text
    [entry] = r.json()["deployments"]
    assert entry["app"] == app_name
    dep = cp.wait(entry["deployment"], timeout=90)
    assert dep.state == S.DEPLOYMENT_STATE_SUCCEEDED, dep.failure_reason
    assert dep.commit_sha == sha and dep.requested_commit_sha == sha and dep.rebuild
    assert dep.trigger == S.DEPLOYMENT_TRIGGER_WEBHOOK
    assert (dep.delivery_id, dep.pusher) == (delivery, "monalisa")
    assert dep.commit_message.startswith("release v2")
    assert "sample app v2" in fetch(bridge.app_url(app_name))

    # GitHub's "Redeliver": same delivery id, nothing new, the first deployment named.
    again = bridge.send(path, "push", payload, secret, delivery=delivery)
    assert again.status_code == 200, again.text
    assert again.json() == {"duplicate": True, "deployments": [entry]}
    assert [d.name for d in bridge.deployments(app_name)] == [entry["deployment"]]


def test_every_app_on_the_repository_and_branch_deploys(bridge, sample_repo, sample_url, make_app_name):
    cp = bridge.cp
    one, two, elsewhere = make_app_name(), make_app_name(), make_app_name()
    cp.create_app(one, sample_url)
    cp.create_app(two, sample_url + "/")  # spelled differently, same repository
    cp.create_app(elsewhere, sample_url, branch="staging")
    sha = commit_version(sample_repo, "v2")
    r = bridge.send("/webhooks/github", "push", push_payload(repo_url=sample_url, after=sha), GLOBAL_SECRET)
    assert r.status_code == 202, r.text
    created = {d["app"]: d["deployment"] for d in r.json()["deployments"]}
    assert set(created) == {one, two}
    for app, name in created.items():
        dep = cp.wait(name, timeout=90)
        assert dep.state == S.DEPLOYMENT_STATE_SUCCEEDED and dep.commit_sha == sha, dep.failure_reason
        assert "sample app v2" in fetch(bridge.app_url(app))
    assert bridge.deployments(elsewhere) == []


def test_pushes_during_a_deploy_coalesce_to_the_newest(bridge, sample_repo, sample_url, app_name):
    cp = bridge.cp
    cp.create_app(app_name, sample_url)
    secret = bridge.secret(app_name)
    path = f"/webhooks/github/{app_name}"
    slow = commit_files(sample_repo, {"Dockerfile": DOCKERFILE + slow_step(2)}, "slow build")
    first = bridge.send(path, "push", push_payload(repo_url=sample_url, after=slow), secret)
    assert first.status_code == 202, first.text
    running = first.json()["deployments"][0]["deployment"]
    cp.wait_state(running, lambda d: d.state == S.DEPLOYMENT_STATE_RUNNING)

    shas, queued = [], []
    for version in ("v2", "v3", "v4"):
        shas.append(commit_version(sample_repo, version))
        r = bridge.send(path, "push", push_payload(repo_url=sample_url, after=shas[-1]), secret)
        assert r.status_code == 202, r.text
        queued.append(r.json()["deployments"][0]["deployment"])

    assert cp.wait(running, timeout=90).state == S.DEPLOYMENT_STATE_SUCCEEDED  # a running deploy finishes
    newest = cp.wait(queued[-1], timeout=90)
    assert newest.state == S.DEPLOYMENT_STATE_SUCCEEDED and newest.commit_sha == shas[-1], newest.failure_reason
    for name in queued[:-1]:
        older = cp.get(name)
        assert older.state == S.DEPLOYMENT_STATE_SUPERSEDED and older.superseded_by in queued[1:], older
    assert "sample app v4" in fetch(bridge.app_url(app_name))


def test_a_replay_of_an_older_push_is_recorded_but_never_redeployed(bridge, sample_repo, sample_url, app_name):
    cp = bridge.cp
    cp.create_app(app_name, sample_url)
    secret = bridge.secret(app_name)
    path = f"/webhooks/github/{app_name}"
    base = sample_repo.head.commit.hexsha
    v2 = commit_version(sample_repo, "v2")
    old_push = push_payload(repo_url=sample_url, after=v2, before=base)
    first = bridge.send(path, "push", old_push, secret)
    assert cp.wait(first.json()["deployments"][0]["deployment"], timeout=90).state == S.DEPLOYMENT_STATE_SUCCEEDED
    v3 = commit_version(sample_repo, "v3")
    newer = bridge.send(path, "push", push_payload(repo_url=sample_url, after=v3, before=v2), secret)
    newest = newer.json()["deployments"][0]["deployment"]
    assert cp.wait(newest, timeout=90).state == S.DEPLOYMENT_STATE_SUCCEEDED

    # The v2 push again under a fresh delivery id (a replay): accepted, recorded, not deployed.
    replay = bridge.send(path, "push", old_push, secret, delivery=new_delivery())
    assert replay.status_code == 202, replay.text
    body = replay.json()
    assert "older than" in body["ignored"] and body["deployments"][0]["ignored"] == body["ignored"]
    ignored = cp.get(body["deployments"][0]["deployment"])
    assert ignored.state == S.DEPLOYMENT_STATE_SUPERSEDED and ignored.superseded_by == newest, ignored
    assert "sample app v3" in fetch(bridge.app_url(app_name))
