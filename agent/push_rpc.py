"""PushImage: the request checked and turned into an agent.registry_images call, the result into
protobuf. Also reads a Deploy's pull credentials. TugboatServicer's PushImage is one line into here.

The credentials are passed on to the engine and never logged: an error names the registry, the
image and the registry's answer, never the password.
"""

from __future__ import annotations

import grpc
from tugboat.v1 import tugboat_pb2 as pb

from agent.docker_engine import EngineError
from agent.registry_images import (ImageMissing, RegistryImages, RegistryLogin, RegistryRefused,
                                   RegistryUnreachable)
from common import registry as R
from common.rules import RuleError

# What the registry's failures become: UNAVAILABLE would read, to the control plane, as "this
# agent is down", so a registry the engine cannot reach is a FAILED_PRECONDITION of the push.
_CODES = ((ImageMissing, grpc.StatusCode.NOT_FOUND), (RegistryRefused, grpc.StatusCode.PERMISSION_DENIED),
          (RegistryUnreachable, grpc.StatusCode.FAILED_PRECONDITION))


def login_of(credentials: pb.RegistryCredentials) -> RegistryLogin:
    """The registry of a request, its address checked (RuleError)."""
    return RegistryLogin(R.address(credentials.address), credentials.username, credentials.password)


def push(images: RegistryImages | None, request: pb.PushImageRequest, context) -> pb.PushImageResponse:
    if images is None:
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, "this agent has no registry support configured")
    try:
        if not request.image or any(c.isspace() for c in request.image):
            raise RuleError(f"image {request.image!r} is not an image reference (APP:TAG)")
        login = login_of(request.credentials)
        ref = images.push(request.image, request.repository, login)
    except ValueError as exc:  # RuleError, or a repository outside the registry
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    except EngineError as exc:
        code = next((code for kind, code in _CODES if isinstance(exc, kind)), grpc.StatusCode.INTERNAL)
        context.abort(code, str(exc))
    repository, digest = R.split_digest_ref(ref)
    return pb.PushImageResponse(ref=ref, digest=digest)
