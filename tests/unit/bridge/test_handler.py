"""The handler's decisions against a fake control plane (outcomes the real one cannot easily be made to give)."""

from __future__ import annotations

from bridge.handler import (
    AppGone,
    Created,
    Delivery,
    Rejected,
    Unavailable,
    handle,
)
from bridge.matching import AppRef
from tests.bridge.github import push_payload

SHA = "a" * 40


class FakeBackend:
    def __init__(self, apps, outcome=None):
        self._apps = apps
        self.outcome = outcome or {}
        self.requests = []
        self.refreshed = 0

    def apps(self, refresh=False):
        self.refreshed += refresh
        return self._apps

    def app(self, name):
        return next((a for a in self._apps if a.name == name), None)

    def create_deployment(self, request):
        self.requests.append(request)
        result = self.outcome.get(request.app, "new")
        if isinstance(result, Exception):
            raise result
        return Created(request.app, f"deployments/{len(self.requests)}", duplicate=result == "dup")


def push(delivery="d-1", **kw):
    return Delivery("push", delivery, push_payload(repo_url="/srv/git/app", after=SHA, **kw))


APPS = [AppRef("a", "/srv/git/app", "main"), AppRef("b", "/srv/git/app", "main")]


def test_requests_carry_the_idempotency_key_commit_pusher_and_message():
    backend = FakeBackend(APPS)
    reply = handle(backend, push(message="Fix it", pusher="monalisa"))
    assert reply.status == 202 and [d["app"] for d in reply.body["deployments"]] == ["a", "b"]
    first = backend.requests[0]
    assert (first.request_id, first.commit_sha, first.pusher, first.commit_message) == ("d-1:a", SHA, "monalisa", "Fix it")


def test_partial_and_full_duplicates_and_failures():
    assert handle(FakeBackend(APPS, {"a": "dup", "b": "dup"}), push()).status == 200
    mixed = handle(FakeBackend(APPS, {"a": "dup"}), push())
    assert mixed.status == 202 and mixed.body["deployments"][0]["duplicate"] is True
    gone = handle(FakeBackend(APPS, {"a": AppGone("a")}), push())
    assert gone.status == 202 and [d["app"] for d in gone.body["deployments"]] == ["b"]
    refused = handle(FakeBackend(APPS, {"a": Rejected("no"), "b": Rejected("no")}), push())
    assert refused.status == 502 and len(refused.body["errors"]) == 2
    down = handle(FakeBackend(APPS, {"b": Unavailable("UNAVAILABLE")}), push())
    assert down.status == 503 and "unreachable" in down.body["error"] and "UNAVAILABLE" not in str(down.body)


def test_no_match_asks_for_a_fresh_app_list_before_ignoring():
    backend = FakeBackend([AppRef("c", "/srv/git/other", "main")])
    reply = handle(backend, push())
    assert reply.status == 202 and "no app deploys repository" in reply.body["ignored"] and backend.refreshed == 1


def test_per_app_deliveries_consider_only_that_app():
    backend = FakeBackend(APPS)
    reply = handle(backend, push(), only_app="b")
    assert reply.status == 202 and [r.app for r in backend.requests] == ["b"]
    assert handle(backend, push(), only_app="zzz").status == 404
