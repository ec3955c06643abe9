"""ImageTransfer: nothing to publish without a registry; with one, the agent pushes with the
decrypted credentials and the digest ref it returns is what the other servers run."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from services.agents.port import AgentError, RegistryAuth
from services.deployments.image_transfer import ImageTransfer
from services.registries.service import RegistryService
from services.security.secretbox import SecretBox

DIGEST = "sha256:" + "ab" * 32


class PushingAgent:
    def __init__(self, answer: str | None = None):
        self.pushes: list[tuple] = []
        self.answer = answer

    def push_image(self, image, repository, auth, *, timeout):
        self.pushes.append((image, repository, auth, timeout))
        return self.answer or f"{repository}@{DIGEST}"


@pytest.fixture
def box():
    return SecretBox(Fernet.generate_key())


def test_no_registry_publishes_nothing(db, box):
    agent, lines = PushingAgent(), []
    transfer = ImageTransfer(db, box)
    assert transfer.registry() is None
    assert transfer.publish(agent, "web:abc", app="web", log=lines.append, timeout=30) is None
    assert agent.pushes == [] and lines == []


def test_publish_pushes_with_the_decrypted_credentials(db, box):
    RegistryService(db, box).set("10.213.0.1:5000", username="ci", password="s3cret-pw")
    agent, lines = PushingAgent(), []
    published = ImageTransfer(db, box).publish(agent, "web:abc", app="web", log=lines.append, timeout=30)
    assert published.ref == f"10.213.0.1:5000/serversinc/web@{DIGEST}"
    assert published.digest == DIGEST
    assert published.auth == RegistryAuth("10.213.0.1:5000", "ci", "s3cret-pw")
    assert agent.pushes == [("web:abc", "10.213.0.1:5000/serversinc/web", published.auth, 30)]
    # The password is in memory for the call, never in a log line or a repr.
    assert "s3cret-pw" not in repr(published) and not any("s3cret-pw" in line for line in lines)


def test_an_answer_that_is_not_a_digest_of_the_repository_fails(db, box):
    RegistryService(db, box).set("10.213.0.1:5000")
    agent = PushingAgent(answer="10.213.0.1:5000/serversinc/web:abc")
    with pytest.raises(AgentError, match="not 10.213.0.1:5000/serversinc/web@sha256"):
        ImageTransfer(db, box).publish(agent, "web:abc", app="web", log=lambda _: None, timeout=30)
