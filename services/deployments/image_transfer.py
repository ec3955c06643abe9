"""Build once, run the same bytes everywhere: a release built on one server is pushed to the
registry and the other servers pull it by digest.

The digest ref (ADDR/serversinc/APP@sha256:…) is what every other server runs: a tag can move, a
digest cannot, so all replicas of a release run one image. With no registry set there is nothing to
publish (`publish` returns None) and a release runs only where it was built.

The registry's password is decrypted here, in memory, for the call to the agent that pushes or
pulls; RegistryAuth keeps it out of its repr, and nothing here logs it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from common import registry as registry_rules
from services.agents.port import Agent, AgentError, RegistryAuth
from services.db.session import Database
from services.registries.service import RegistryService
from services.security.secretbox import SecretBox

@dataclass(frozen=True)
class Published:
    """A release as the registry holds it."""

    ref: str  # "ADDR/serversinc/APP@sha256:…": what the other servers pull and run
    digest: str  # "sha256:…"
    auth: RegistryAuth  # what they pull it with (ReleaseSpec.pull_auth)


class ImageTransfer:
    def __init__(self, db: Database, box: SecretBox):
        self.registries = RegistryService(db, box)

    def registry(self) -> RegistryAuth | None:
        """The registry builds are published to, or None when none is set."""
        creds = self.registries.credentials()
        if creds is None:
            return None
        address, username, password = creds
        return RegistryAuth(address=address, username=username, password=password)

    def publish(self, agent: Agent, image: str, *, app: str, log: Callable[[str], None],
                timeout: float) -> Published | None:
        """Has the agent that built `image` push it to the registry; None when no registry is set.
        A push that fails raises AgentError with the agent's reason (e.g. the registry refused
        the credentials); nothing has changed on any server then."""
        auth = self.registry()
        if auth is None:
            return None
        repository = registry_rules.repository(auth.address, app)
        log(f"pushing {image} to {repository}")
        ref = agent.push_image(image, repository, auth, timeout=timeout)
        name, digest = registry_rules.split_digest_ref(ref) or ("", "")
        if name != repository:
            raise AgentError(f"the agent answered the push of {image} with {ref!r}, not {repository}@sha256:…")
        log(f"pushed {ref}")
        return Published(ref=ref, digest=digest, auth=auth)
