"""The Deploy's pull hook: only a digest ref with pull credentials that is not on the engine is
pulled; a failed pull is PullFailed with the reason; a pulled image goes to retention as a build's."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from agent.docker_engine import EngineError
from agent.image_pull import PullFailed, pull_if_missing
from agent.registry_images import RegistryLogin

REF = "10.213.0.1:5000/serversinc/web@sha256:" + "ab" * 32
LOGIN = RegistryLogin("10.213.0.1:5000", "ci", "pw")


class Images:
    def __init__(self, present=False, error: Exception | None = None):
        self.present_now, self.error, self.pulls = present, error, []

    def present(self, ref):
        return self.present_now

    def pull(self, ref, login):
        self.pulls.append((ref, login))
        if self.error:
            raise self.error
        return "sha256:" + "cd" * 32


class Retention:
    def __init__(self):
        self.built = []

    def built_(self, app, image, image_id):
        self.built.append((app, image, image_id))


def releaser(images):
    retention = Retention()
    return SimpleNamespace(registry_images=images, retention=SimpleNamespace(built=retention.built_)), retention


def spec(image=REF, login=LOGIN):
    return SimpleNamespace(app="web", image=image, pull_login=login)


@pytest.mark.parametrize("case", [spec(image="web:abc"), spec(login=None)])
def test_nothing_is_pulled_without_a_digest_ref_and_credentials(case):
    images = Images()
    r, _ = releaser(images)
    assert list(pull_if_missing(r, case)) == [] and images.pulls == []


def test_an_image_already_here_is_not_pulled():
    images = Images(present=True)
    r, retention = releaser(images)
    assert list(pull_if_missing(r, spec())) == [] and images.pulls == [] and retention.built == []


def test_a_missing_image_is_pulled_by_digest_and_handed_to_retention():
    images = Images()
    r, retention = releaser(images)
    lines = list(pull_if_missing(r, spec()))
    assert lines[0] == f"pulling {REF} by digest from 10.213.0.1:5000"
    assert images.pulls == [(REF, LOGIN)]
    assert retention.built == [("web", REF, "sha256:" + "cd" * 32)]


def test_a_failed_pull_says_why():
    r, retention = releaser(Images(error=EngineError("pull of x: the registry refused the credentials")))
    with pytest.raises(PullFailed, match="could not pull the release's image: .*refused the credentials"):
        list(pull_if_missing(r, spec()))
    assert retention.built == []
    assert "password=" not in repr(LOGIN)
