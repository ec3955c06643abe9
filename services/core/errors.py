"""The control plane's domain errors. The API layer maps each to one gRPC status code.

Domain code raises these with a message a person can act on; it never imports gRPC. Each class
carries the stable machine-readable reason (AIP-193) a caller can branch on: a script tells "no such
app" from "no such deployment" by `reason`, never by parsing the message.
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
    """A request field breaks a rule. `field` (when known) names it, e.g. "parent" or "app.port"."""

    reason = "INVALID_ARGUMENT"

    def __init__(self, message: str, *, field: str = "", reason: str | None = None,
                 metadata: dict[str, str] | None = None):
        super().__init__(message, reason=reason, metadata={**({"field": field} if field else {}), **(metadata or {})})
        self.field = field


class NotFound(DomainError):
    reason = "NOT_FOUND"


class AlreadyExists(DomainError):
    reason = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    reason = "FAILED_PRECONDITION"


class Unavailable(DomainError):
    """A dependency (an agent, a git remote) could not be reached."""

    reason = "UNAVAILABLE"


class AppNotFound(NotFound):
    reason = "APP_NOT_FOUND"


class DeploymentNotFound(NotFound):
    reason = "DEPLOYMENT_NOT_FOUND"


class ServerNotFound(NotFound):
    reason = "SERVER_NOT_FOUND"


class ApiTokenNotFound(NotFound):
    reason = "API_TOKEN_NOT_FOUND"


class RepositoryNotFound(NotFound):
    reason = "REPOSITORY_NOT_FOUND"


class BranchNotFound(NotFound):
    reason = "BRANCH_NOT_FOUND"


class AppAlreadyExists(AlreadyExists):
    reason = "APP_ALREADY_EXISTS"


class ServerAlreadyExists(AlreadyExists):
    reason = "SERVER_ALREADY_EXISTS"


class ApiTokenAlreadyExists(AlreadyExists):
    reason = "API_TOKEN_ALREADY_EXISTS"


class RequestAlreadyProcessed(AlreadyExists):
    """A repeated idempotency key (AIP-155): metadata names what the first request created."""

    reason = "REQUEST_ALREADY_PROCESSED"


class DeploymentNotCancellable(FailedPrecondition):
    """It already finished, or already switched traffic."""

    reason = "DEPLOYMENT_NOT_CANCELLABLE"


class NoEarlierRelease(FailedPrecondition):
    reason = "NO_EARLIER_RELEASE"


class ReleaseNotRedeployable(FailedPrecondition):
    """Only a successful deployment has a release to run again."""

    reason = "RELEASE_NOT_REDEPLOYABLE"


class DeploymentInProgress(FailedPrecondition):
    """The app is deploying; the request would pull it out from under the worker."""

    reason = "DEPLOYMENT_IN_PROGRESS"


class JoinTokenInvalid(FailedPrecondition):
    reason = "JOIN_TOKEN_INVALID"


class RepositoryUnreadable(FailedPrecondition):
    reason = "REPOSITORY_UNREADABLE"


class AppNotDeployed(FailedPrecondition):
    reason = "APP_NOT_DEPLOYED"


class ServerUnreachable(Unavailable):
    reason = "SERVER_UNREACHABLE"


class RepositoryUnreachable(Unavailable):
    reason = "REPOSITORY_UNREACHABLE"
