"""Docker adapter for the registry: push a built image, pull a release by digest.

Build once, run the same bytes everywhere: the server that built a release pushes it and answers
with its digest ref (REPOSITORY@sha256:…); every other server pulls exactly that. A pulled image
carries the labels of its build (they are in the image config), so retention counts it as the
app's like one built here.

Credentials go to the engine in the X-Registry-Auth header of the call (docker-py's auth_config),
never in a process argument, a file or a log line; RegistryLogin keeps the password out of repr.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import docker
import docker.errors

from agent.docker_engine import EngineError
from common import registry as R

log = logging.getLogger(__name__)


class RegistryRefused(EngineError):
    """The registry refused the credentials (or the engine could not log in with them)."""


class RegistryUnreachable(EngineError):
    """The engine could not reach the registry (or does not trust its certificate)."""


class ImageMissing(EngineError):
    """The image to push is not on this engine."""


@dataclass(frozen=True)
class RegistryLogin:
    address: str
    username: str = ""
    password: str = field(default="", repr=False)

    def auth_config(self) -> dict | None:
        if not self.username:
            return None
        return {"username": self.username, "password": self.password, "serveraddress": self.address}


_REFUSED = ("unauthorized", "authentication required", "denied", "no basic auth credentials")
_UNREACHABLE = ("connection refused", "no such host", "i/o timeout", "certificate", "tls:",
                "no route to host", "server gave http response", "network is unreachable")


def _classify(what: str, message: str) -> EngineError:
    """The engine's message, as an error people can act on."""
    low = message.lower()
    if any(word in low for word in _REFUSED):
        return RegistryRefused(f"{what}: the registry refused the credentials ({message})")
    if any(word in low for word in _UNREACHABLE):
        return RegistryUnreachable(f"{what}: the registry cannot be reached or is not trusted by the "
                                   f"engine ({message}); engines trust it through "
                                   "/etc/docker/certs.d/HOST:PORT/ca.crt")
    return EngineError(f"{what}: {message}")


def _explain(exc: docker.errors.APIError) -> str:
    return str(exc.explanation or exc)


class RegistryImages:
    def __init__(self, client: docker.DockerClient) -> None:
        self.api = client.api

    def push(self, image: str, repository: str, login: RegistryLogin) -> str:
        """Tags `image` as REPOSITORY:TAG (TAG: the image's own tag, its commit), pushes it, and
        returns REPOSITORY@sha256:… as the registry stored it."""
        registry, _app = R.split_repository(repository)
        if registry != login.address:
            raise ValueError(f"repository {repository} is not in the registry {login.address}")
        own = R.tag_repository(image)
        tag = image[len(own) + 1:] if own != image else "latest"
        try:
            self.api.inspect_image(image)
        except docker.errors.ImageNotFound:
            raise ImageMissing(f"image {image} is not on this server: build it here first") from None
        except docker.errors.APIError as exc:
            raise EngineError(_explain(exc)) from exc
        what = f"push of {image} to {repository}"
        digest = ""
        try:
            self.api.tag(image, repository, tag)
            for event in self.api.push(repository, tag=tag, auth_config=login.auth_config(),
                                       stream=True, decode=True):
                if event.get("error"):
                    raise _classify(what, str(event["error"]))
                digest = (event.get("aux") or {}).get("Digest", digest)
        except docker.errors.APIError as exc:
            raise _classify(what, _explain(exc)) from exc
        if not R.DIGEST.fullmatch(digest or ""):
            raise EngineError(f"{what}: the engine reported no digest")
        log.info("pushed %s as %s", image, R.digest_ref(repository, digest))
        return R.digest_ref(repository, digest)

    def present(self, ref: str) -> bool:
        try:
            self.api.inspect_image(ref)
            return True
        except docker.errors.ImageNotFound:
            return False
        except docker.errors.APIError as exc:
            raise EngineError(_explain(exc)) from exc

    def pull(self, ref: str, login: RegistryLogin) -> str:
        """Pulls a digest ref (REPOSITORY@sha256:…) with `login`; returns the image id."""
        parts = R.split_digest_ref(ref)
        if parts is None:
            raise ValueError(f"{ref} is not a digest ref (REPOSITORY@sha256:…): only digests are pulled")
        R.split_repository(parts[0])
        what = f"pull of {ref}"
        try:
            for event in self.api.pull(ref, auth_config=login.auth_config(), stream=True, decode=True):
                if event.get("error"):
                    raise _classify(what, str(event["error"]))
            return self.api.inspect_image(ref)["Id"]
        except docker.errors.APIError as exc:
            raise _classify(what, _explain(exc)) from exc
