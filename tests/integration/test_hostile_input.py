"""Hostile repository URLs and refs are refused before git sees them, and leave no trace on disk."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from serversinc.v1 import app_pb2, app_service_pb2, git_service_pb2

HOSTILE_URLS = [
    "ext::sh -c touch% /tmp/pwned",
    "ext::sh -c 'touch /tmp/pwned'",
    "fd::17",
    "--upload-pack=touch /tmp/x",
    "-u touch /tmp/x",
    "-utouch /tmp/x",
    "file::/etc",
    "https://example.com/repo.git\n--upload-pack=touch /tmp/x",
]
HOSTILE_REFS = ["refs/heads/--x", "--x", "-u", "main;rm -rf /", "../../etc", "main..x", "a b", "x~1", "@{-1}", ".hidden"]
TRACES = [Path("/tmp/pwned"), Path("/tmp/x")]


@pytest.fixture(autouse=True)
def no_traces():
    for p in TRACES:
        p.unlink(missing_ok=True)
    yield
    assert [p for p in TRACES if p.exists()] == [], "a hostile input ran a command"


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_hostile_repository_urls_are_refused(control_plane, url):
    with pytest.raises(grpc.RpcError) as info:
        control_plane.apps.CreateApp(app_service_pb2.CreateAppRequest(app=app_pb2.App(name="web", repo_url=url)))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as info:
        control_plane.git.ResolveCommit(git_service_pb2.ResolveCommitRequest(repo_url=url, ref="main"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as info:
        control_plane.git.ListBranches(git_service_pb2.ListBranchesRequest(repo_url=url))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(control_plane.apps.ListApps(app_service_pb2.ListAppsRequest()).apps) == []


@pytest.mark.parametrize("ref", HOSTILE_REFS)
def test_hostile_refs_are_refused(control_plane, sample_url, ref):
    with pytest.raises(grpc.RpcError) as info:
        control_plane.create_app("web", sample_url, branch=ref)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "branch" in info.value.details()
    with pytest.raises(grpc.RpcError) as info:
        control_plane.git.ResolveCommit(git_service_pb2.ResolveCommitRequest(repo_url=sample_url, ref=ref))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("field, value", [
    ("dockerfile", "../../etc/passwd"), ("dockerfile", "/etc/passwd"), ("context_dir", "../.."),
    ("context_dir", "/"), ("dockerfile", "-f"), ("health_path", "no-slash"), ("health_path", "/a b"),
])
def test_paths_that_escape_the_repository_are_refused(control_plane, sample_url, field, value):
    with pytest.raises(grpc.RpcError) as info:
        control_plane.create_app("web", sample_url, **{field: value})
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_oversized_requests_are_refused(control_plane, sample_url):
    with pytest.raises(grpc.RpcError) as info:
        control_plane.create_app("web", sample_url, env={"BIG": "x" * (5 * 1024 * 1024)})
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    with pytest.raises(grpc.RpcError) as info:
        control_plane.create_app("web", sample_url, env={"BIG": "x" * (40 * 1024)})
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_real_repository_still_resolves(control_plane, sample_repo, sample_url):
    commit = control_plane.git.ResolveCommit(git_service_pb2.ResolveCommitRequest(repo_url=sample_url, ref="main"))
    assert commit.sha == sample_repo.head.commit.hexsha
