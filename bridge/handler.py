"""What one verified GitHub delivery does: the decisions, free of HTTP and gRPC.

The HTTP edge (`app.py`) has already bounded the body, checked the content type, verified the
signature and parsed the JSON; here the event is turned into zero or more CreateDeployment calls
through a `Backend` (the gRPC adapter in production, a fake or the real one in tests) and into a
`Reply` (status + JSON body) that tells the person reading GitHub's delivery log what happened.

De-duplication is the control plane's job: every deployment is created with the idempotency key
`<X-GitHub-Delivery>:<app>`, so a redelivery (GitHub's "Redeliver" button, or a retry after a
timeout) creates nothing and names the deployment the first delivery made. Because the key is
only used once a delivery is verified, a forged delivery cannot "use up" a real delivery's id.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Protocol

from common import rules
from bridge.matching import (
    TAG_PREFIX,
    AppRef,
    branch_of,
    matching_apps,
    payload_repositories,
    repository_matches,
)

log = logging.getLogger(__name__)

ZERO_SHA = re.compile(r"0+")
DELIVERY_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # GitHub sends a UUID; 255 is the key's limit
MAX_PUSHER = 255
MAX_COMMIT_MESSAGE = 64 * 1024


class Unavailable(Exception):
    """The control plane could not be reached (or did not answer in time)."""


class AppGone(Exception):
    """The app was deleted between matching and enqueuing."""


class Rejected(Exception):
    """The control plane refused the request; the message is safe to show to the sender."""


@dataclass(frozen=True)
class DeployRequest:
    app: str
    commit_sha: str
    delivery_id: str
    pusher: str
    commit_message: str
    # The branch head the push replaced (GitHub's `before`): the control plane's push order.
    before_commit_sha: str = ""

    @property
    def request_id(self) -> str:
        """The idempotency key: one deployment per (delivery, app), however often it is delivered."""
        return f"{self.delivery_id}:{self.app}"


@dataclass(frozen=True)
class Created:
    app: str
    deployment: str
    duplicate: bool = False
    # Why the control plane recorded it without deploying (an older commit than the newest push).
    ignored: str = ""


class Backend(Protocol):
    def apps(self, refresh: bool = False) -> list[AppRef]:
        """All apps; `refresh` asks for a fresh list instead of a briefly cached one."""

    def app(self, name: str) -> AppRef | None:
        """One app, None when there is no such app."""

    def create_deployment(self, request: DeployRequest) -> Created:
        """Enqueue a webhook deployment (rebuild, supersede queued ones); raises AppGone,
        Rejected or Unavailable. A repeated request_id returns Created(duplicate=True); a commit
        older than the newest push is recorded but not deployed: Created(ignored=reason)."""


@dataclass(frozen=True)
class Delivery:
    event: str
    delivery_id: str
    payload: dict


@dataclass
class Reply:
    status: int
    body: dict = field(default_factory=dict)


def ignored(reason: str, status: int = 202) -> Reply:
    return Reply(status, {"ignored": reason})


def error(status: int, message: str) -> Reply:
    return Reply(status, {"error": message})


UNAVAILABLE = ("control plane unreachable: nothing was enqueued; redeliver this delivery "
               "from GitHub once the control plane is back")


def handle(backend: Backend, delivery: Delivery, only_app: str | None = None) -> Reply:
    """Decide what a verified delivery does. `only_app`: it came in on that app's own URL."""
    try:
        if delivery.event == "ping":
            return Reply(200, {"ok": True, "zen": str(delivery.payload.get("zen", ""))})
        if delivery.event == "push":
            return _push(backend, delivery, only_app)
        if not delivery.event:
            return error(400, "missing X-GitHub-Event header")
        return ignored(f"event {delivery.event!r} is not handled (only push and ping are)")
    except Unavailable as exc:
        log.warning("delivery %s: %s (%s)", delivery.delivery_id or "-", UNAVAILABLE, exc)
        return error(503, UNAVAILABLE)


def _text(value, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _push(backend: Backend, delivery: Delivery, only_app: str | None) -> Reply:
    payload = delivery.payload
    if not delivery.delivery_id:
        return error(400, "missing X-GitHub-Delivery header: a push cannot be de-duplicated without it")
    if not DELIVERY_ID.fullmatch(delivery.delivery_id):
        return error(400, "malformed X-GitHub-Delivery header")
    ref = payload.get("ref")
    if not isinstance(ref, str) or not ref:
        return error(400, "push payload has no ref")
    if ref.startswith(TAG_PREFIX):
        return ignored("tag push")
    after = payload.get("after")
    if payload.get("deleted") is True or (isinstance(after, str) and ZERO_SHA.fullmatch(after)):
        return ignored("branch deletion")
    branch = branch_of(ref)
    if branch is None:
        return ignored(f"not a branch push ({ref})")
    if not isinstance(after, str) or not rules.SHA.fullmatch(after):
        return error(400, "push payload has no valid 'after' commit")
    repositories = payload_repositories(payload)
    if not repositories:
        return error(400, "push payload names no repository")
    shown_repo = min(repositories, key=len)

    if only_app is not None:
        app = backend.app(only_app)
        if app is None:
            return error(404, "not found")
        if not repository_matches(app, repositories):
            return ignored(f"app {app.name!r} does not deploy repository {shown_repo}")
        if app.branch != branch:
            return ignored(f"app {app.name!r} deploys branch {app.branch!r}, not {branch!r}")
        targets = [app]
    else:
        targets = matching_apps(backend.apps(), repositories, branch)
        if not targets:
            # The cached list may predate a just-created app: never answer "no app" from it alone.
            apps = backend.apps(refresh=True)
            targets = matching_apps(apps, repositories, branch)
            if not targets:
                if any(repository_matches(a, repositories) for a in apps):
                    return ignored(f"no app deploys branch {branch!r} of {shown_repo}")
                return ignored(f"no app deploys repository {shown_repo}")

    pusher = payload.get("pusher") if isinstance(payload.get("pusher"), dict) else {}
    head = payload.get("head_commit") if isinstance(payload.get("head_commit"), dict) else {}
    before = payload.get("before")
    before = before if isinstance(before, str) and rules.SHA.fullmatch(before) else ""
    created: list[Created] = []
    errors: list[dict] = []
    for app in targets:
        request = DeployRequest(
            app=app.name, commit_sha=after, delivery_id=delivery.delivery_id,
            pusher=_text(pusher.get("name"), MAX_PUSHER),
            commit_message=_text(head.get("message"), MAX_COMMIT_MESSAGE), before_commit_sha=before,
        )
        try:
            created.append(backend.create_deployment(request))
        except AppGone:
            log.info("delivery %s: app %s was deleted meanwhile", delivery.delivery_id, app.name)
        except Rejected as exc:
            log.warning("delivery %s: control plane refused %s: %s", delivery.delivery_id, app.name, exc)
            errors.append({"app": app.name, "error": str(exc)})
    for c in created:
        log.info("delivery %s: %s %s %s at %s", delivery.delivery_id, "already created" if c.duplicate
                 else f"ignored ({c.ignored})" if c.ignored else "enqueued", c.deployment, c.app, after[:12])

    listed = [{"app": c.app, "deployment": c.deployment, **({"duplicate": True} if c.duplicate else {}),
               **({"ignored": c.ignored} if c.ignored else {})} for c in created]
    if created and all(c.ignored for c in created) and not errors:
        return Reply(202, {"ignored": created[0].ignored if len(created) == 1 else "older than the newest push",
                           "deployments": listed})
    if created and all(c.duplicate for c in created) and not errors:
        return Reply(200, {"duplicate": True, "deployments": [{"app": c.app, "deployment": c.deployment}
                                                               for c in created]})
    if created:
        return Reply(202, {"deployments": listed, **({"errors": errors} if errors else {})})
    if errors:
        return Reply(502, {"error": "the control plane refused the deployment", "errors": errors})
    return ignored(f"no app deploys branch {branch!r} of {shown_repo}")
