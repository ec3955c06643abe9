"""Repository URL normalization and which apps a push matches (pure)."""

from __future__ import annotations

import pytest

from bridge.matching import AppRef, branch_of, matching_apps, normalize_repo_url, payload_repositories
from tests.bridge.github import push_payload

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
