"""The control plane's domain errors. The API layer maps each to one gRPC status code.

Domain code raises these with a message a person can act on; it never imports gRPC.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base class: `reason` is a stable UPPER_SNAKE machine-readable code (AIP-193)."""

    reason = "ERROR"

    def __init__(self, message: str, *, reason: str | None = None, metadata: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        # Machine-readable facts for the caller (ErrorInfo.metadata), e.g. the existing resource.
        self.metadata = metadata or {}
        if reason:
            self.reason = reason


class InvalidArgument(DomainError):
    reason = "INVALID_ARGUMENT"


class NotFound(DomainError):
    reason = "NOT_FOUND"


class AlreadyExists(DomainError):
    reason = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    reason = "FAILED_PRECONDITION"


class Unavailable(DomainError):
    """A dependency (an agent, a git remote) could not be reached."""

    reason = "UNAVAILABLE"
