"""The pure parts: URL normalization and matching, GitHub's signature, and the handler's
decisions against a fake control plane (outcomes the real one cannot easily be made to give)."""

from __future__ import annotations

import pytest

from bridge import signature
from bridge.handler import (
    AppGone,
    Created,
    Delivery,
    Rejected,
    Unavailable,
    handle,
)
from bridge.matching import AppRef, branch_of, matching_apps, normalize_repo_url, payload_repositories
from tests.webhook.github import push_payload

SHA = "a" * 40


@pytest.mark.parametrize("url", [
    "https://github.com/Owner/Repo", "https://github.com/Owner/Repo.git", "https://github.com/owner/repo/",
    "http://github.com/owner/repo", "git@github.com:owner/repo.git", "git@github.com:Owner/Repo",
    "ssh://git@github.com/owner/repo", "ssh://git@github.com:22/owner/repo.git", "git://github.com/owner/repo.git",
    "https://x-access-token:abc@github.com/owner/repo.git", "https://www.github.com/owner/repo",
    "https://api.github.com/repos/Owner/Repo", "  https://github.com/owner/repo  ",
])
def test_spellings_of_one_repository_normalize_alike(url):
    assert normalize_repo_url(url) == "github.com/owner/repo"


def test_different_repositories_and_local_paths():
    assert normalize_repo_url("https://github.com/owner/repo2") != normalize_repo_url("https://github.com/owner/repo")
    assert normalize_repo_url("https://gitlab.com/owner/repo") == "gitlab.com/owner/repo"
    assert normalize_repo_url("/srv/Git/app/") == "/srv/Git/app"  # paths keep their case
    assert normalize_repo_url("file:///srv/git/app") == "/srv/git/app"
    assert normalize_repo_url("") == "" and normalize_repo_url("   ") == ""


def test_branches_and_matching():
    assert branch_of("refs/heads/main") == "main" and branch_of("refs/heads/feature/x") == "feature/x"
    assert branch_of("refs/tags/v1") is None and branch_of("refs/heads/") is None and branch_of("main") is None
    payload = push_payload(repo_url="/srv/git/app", after=SHA)
    repos = payload_repositories(payload)
    assert {"/srv/git/app", "github.com/codertocat/hello-world"} <= repos
    apps = [AppRef("a", "/srv/git/app", "main"), AppRef("b", "git@github.com:Codertocat/Hello-World.git", "main"),
            AppRef("c", "/srv/git/app", "dev"), AppRef("d", "/srv/git/other", "main")]
    assert [a.name for a in matching_apps(apps, repos, "main")] == ["a", "b"]


def test_signature_matches_githubs_documented_example():
    # From GitHub's "Validating webhook deliveries" documentation.
    secret, body = "It's a Secret to Everybody", b"Hello, World!"
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert signature.sign(secret, body) == expected
    assert signature.verify(secret, body, expected)
    assert not signature.verify(secret, body + b" ", expected)
    assert not signature.verify(secret, body, expected.upper().replace("SHA256", "sha256")[:-1] + "0")
    assert not signature.verify(secret, body, None) and not signature.verify(secret, body, "")
    assert not signature.verify("", body, signature.sign("", body))  # no secret, no trust
    assert not signature.verify(secret, body, "sha256=\u00e9")


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
