"""Build once, run the same bytes everywhere: a release built on host A is pushed to a real
registry (Debian's docker-registry, HTTPS from the test CA, htpasswd login) and pulled by digest
on host B; wrong credentials fail with the registry's reason and change nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import docker.errors
import pytest
import requests
from sqlalchemy import text

from common.cancel import CancelToken
from common.phases import Phase
from common.specs import BuildSpec
from services.agents.port import AgentError, RegistryAuth, ReleaseSpec
from services.deployments.image_transfer import ImageTransfer
from services.registries.service import RegistryService
from tests.support.registry import missing_requirements, run_registry
from tests.support.sample_app import APP_PORT, commit_version, make_sample_repo, repo_url

pytestmark = pytest.mark.docker
SERVERSINC = Path(sys.executable).with_name("serversinc")
APP_LABEL = "io.serversinc.app"


@pytest.fixture(scope="module")
def registry(hosts, agent_certs, tmp_path_factory):
    """One registry for the module, on host A's link address (B reaches it by a route)."""
    why = missing_requirements()
    if why:
        pytest.skip(why)
    with run_registry(tmp_path_factory.mktemp("registry"), hosts[0].peer_address, agent_certs,
                      reach_from=hosts) as running:
        yield running


@pytest.fixture
def app(fleet):
    """A fresh app name; whatever of it the agents or engines hold is removed afterwards (its
    registry tag and pulled digests included: the fixture's own sweep only knows `<app>:*`)."""
    name = f"r-{uuid.uuid4().hex[:8]}"
    fleet.apps.append(name)
    yield name
    for server, host in fleet.servers.items():
        try:
            fleet.cp.platform.agents.for_server(server).remove_app(name)
        except AgentError:
            pass
        with host.docker() as engine:
            for image in engine.api.images(filters={"label": f"{APP_LABEL}={name}"}):
                try:
                    engine.api.remove_image(image["Id"], force=True)
                except docker.errors.APIError:
                    pass


def build(agent, app: str, repo) -> str:
    updates = list(agent.build(BuildSpec(app, 1, repo_url(repo), repo.head.commit.hexsha),
                               timeout=300, cancel=CancelToken(), slot_wait=300))
    assert updates[-1].done and not updates[-1].error, updates[-1]
    return updates[-1].image


def deploy(agent, app: str, deployment_id: int, image: str, sha: str, auth: RegistryAuth | None):
    spec = ReleaseSpec(app=app, deployment_id=deployment_id, image=image, commit_sha=sha, port=APP_PORT,
                       health_path="/", health_timeout_seconds=60, stop_grace_seconds=1, drain_seconds=1,
                       pull_auth=auth)
    return list(agent.deploy(spec, timeout=300, cancel=CancelToken()))


def served(host, url: str) -> str:
    return requests.get(f"http://{host.front_door}/", headers={"Host": urlsplit(url).netloc}, timeout=5).text


def running_image(host, app: str) -> str:
    with host.docker() as engine:
        [container] = engine.containers.list(filters={"label": f"{APP_LABEL}={app}"})
        return container.attrs["Image"]


def repo_digests(host, ref: str) -> list[str]:
    with host.docker() as engine:
        return engine.api.inspect_image(ref)["RepoDigests"]


def test_built_on_a_pushed_then_pulled_by_digest_on_b_both_run_the_same_image(fleet, registry, app, tmp_path):
    a, b = fleet.servers["a"], fleet.servers["b"]
    platform = fleet.cp.platform
    # Set with the CLI, the password on stdin; listed without it; stored encrypted.
    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
        return subprocess.run([str(SERVERSINC), "registries", *args], input=stdin, capture_output=True, text=True,
                              env={**os.environ, "SERVERSINC_API": fleet.cp.address}, timeout=60)

    done = cli("set", registry.address, "--username", registry.username, "--password-stdin",
               stdin=registry.password + "\n")
    assert done.returncode == 0, done.stderr
    listed = cli("list", "--json")
    [shown] = json.loads(listed.stdout)
    assert shown["address"] == registry.address and shown["has_password"] and not shown.get("password")
    assert registry.password not in listed.stdout + done.stdout
    with platform.db.engine.connect() as conn:
        stored = conn.execute(text("SELECT password FROM registries")).scalar_one()
    assert registry.password not in stored and stored.startswith("fernet:")

    marker = f"v1-{app}"
    repo = make_sample_repo(tmp_path / "repo", marker)
    sha = repo.head.commit.hexsha
    agent_a, agent_b = platform.agents.for_server("a"), platform.agents.for_server("b")
    image = build(agent_a, app, repo)
    lines: list[str] = []
    published = ImageTransfer(platform.db, platform.box).publish(agent_a, image, app=app, log=lines.append,
                                                                 timeout=300)
    assert published.ref.startswith(f"{registry.address}/serversinc/{app}@sha256:"), published
    assert registry.tags(app) == [sha]

    on_b = deploy(agent_b, app, 2, published.ref, sha, published.auth)
    assert on_b[-1].phase is Phase.DONE and not on_b[-1].failure, on_b[-1]
    assert any(f"pulling {published.ref} by digest" in u.message for u in on_b), [u.message for u in on_b]
    on_a = deploy(agent_a, app, 3, published.ref, sha, published.auth)
    assert on_a[-1].phase is Phase.DONE and not on_a[-1].failure, on_a[-1]
    assert not any("pulling" in u.message for u in on_a)  # A built it: nothing to pull

    # The same bytes on both engines: one image id, the same digest, and both serve the release.
    assert running_image(a, app) == running_image(b, app)
    assert published.ref in repo_digests(a, published.ref) and published.ref in repo_digests(b, published.ref)
    assert marker in served(a, on_a[-1].url) and marker in served(b, on_b[-1].url)
    # B's retention sees the pulled image as the app's (its build labels came with it) and keeps it.
    [kept] = agent_b.list_images(app).images
    assert kept.id == running_image(b, app) and kept.commit_sha == sha and kept.retained
    assert registry.password not in "".join(a.agent_log + b.agent_log)

    # Removing the app removes its image on both: A's registry tag and B's digest-only image too.
    for agent, host in ((agent_a, a), (agent_b, b)):
        agent.remove_app(app)
        with host.docker() as engine:
            assert engine.api.images(filters={"label": f"{APP_LABEL}={app}"}) == []

    # One registry at a time: another address is refused until this one is deleted.
    other = cli("set", "other.example:5000")
    assert other.returncode == 1 and f"registry {registry.address} is already set" in other.stderr, other.stderr
    assert cli("delete", registry.address).returncode == 0
    assert "no registry set" in cli("list").stdout
    assert ImageTransfer(platform.db, platform.box).registry() is None


def test_wrong_credentials_fail_with_the_registry_reason_and_change_nothing(fleet, registry, app, tmp_path):
    b = fleet.servers["b"]
    platform = fleet.cp.platform
    agent_a, agent_b = platform.agents.for_server("a"), platform.agents.for_server("b")
    right = ImageTransfer(platform.db, platform.box)
    RegistryService(platform.db, platform.box).set(registry.address, username=registry.username,
                                                   password=registry.password)
    repo = make_sample_repo(tmp_path / "repo", f"v1-{app}")
    v1 = repo.head.commit.hexsha
    published = right.publish(agent_a, build(agent_a, app, repo), app=app, log=lambda _: None, timeout=300)
    first = deploy(agent_b, app, 2, published.ref, v1, published.auth)
    assert first[-1].phase is Phase.DONE, first[-1]
    url = first[-1].url
    before = running_image(b, app)

    v2 = commit_version(repo, f"v2-{app}")
    image = build(agent_a, app, repo)
    wrong = RegistryAuth(registry.address, registry.username, "not-the-password")
    with pytest.raises(AgentError) as refused:
        agent_a.push_image(image, f"{registry.address}/serversinc/{app}", wrong, timeout=300)
    assert "refused the credentials" in str(refused.value) and "not-the-password" not in str(refused.value)
    assert registry.tags(app) == [v1]  # nothing was pushed

    published = right.publish(agent_a, image, app=app, log=lambda _: None, timeout=300)
    failed = deploy(agent_b, app, 3, published.ref, v2, wrong)
    assert failed[-1].failure == "START" and failed[-1].phase is Phase.START, failed[-1]
    assert "could not pull" in failed[-1].error and "refused the credentials" in failed[-1].error, failed[-1].error
    assert "not-the-password" not in failed[-1].error
    # B still serves v1 from the same container; v2's image never reached its engine.
    assert running_image(b, app) == before and f"v1-{app}" in served(b, url)
    with b.docker() as engine, pytest.raises(docker.errors.ImageNotFound):
        engine.api.inspect_image(published.ref)
