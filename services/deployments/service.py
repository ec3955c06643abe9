"""Deployment use cases for API callers: queue, read, list, cancel and watch deployments."""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from common.names import deployment_name
from services.apps import repository as apps_repo
from services.core import paging
from services.core import validation as v
from services.core.errors import (
    AppNotFound,
    DeploymentNotCancellable,
    DeploymentNotFound,
    InvalidArgument,
    NoEarlierRelease,
    ReleaseNotRedeployable,
    RequestAlreadyProcessed,
)
from services.core.states import PAST_SWITCH, EventKind, Phase, State, Trigger
from services.db.group_commit import GroupCommit
from services.db.models import Deployment, utcnow
from services.db.session import Database
from services.deployments import pushes
from services.deployments import repository as repo
from services.deployments.events import EventLog
from services.jobs.cancels import CancelRegistry
from services.jobs.queue import JobQueue
from services.retention import events as event_retention


@dataclass
class DeploymentView:
    """A deployment with the facts computed at read time (its place in the queue)."""

    row: Deployment
    queue_position: int = 0
    # Its events were pruned by event retention (services.retention.events); GetDeployment only.
    log_pruned: bool = False


@dataclass(frozen=True)
class _Create:
    """One CreateDeployment, validated, waiting for its group commit."""

    app_name: str
    rebuild: bool
    commit_sha: str
    trigger: Trigger
    source_deployment: str
    request_id: str
    delivery_id: str
    pusher: str
    commit_message: str
    supersede_queued: bool
    before_commit_sha: str


def parse_name(name: str) -> int:
    """Accepts "deployments/42" or "42"."""
    raw = name.removeprefix("deployments/")
    if not raw.isdigit() or int(raw) <= 0:
        raise InvalidArgument(f"deployment name {name!r} is not of the form deployments/ID")
    return int(raw)


class DeploymentService:
    def __init__(self, db: Database, events: EventLog, queue: JobQueue, cancels: CancelRegistry):
        self.db = db
        self.events = events
        self.queue = queue
        self.cancels = cancels
        # services.retention.rollback.RollbackGuard (or None): a redeploy of a release whose image
        # retention pruned is refused before it is queued.
        self.rollback_guard = None
        # Creates that arrive together are written together (services.db.group_commit); one app's
        # creates never share a transaction, so each sees the one before it committed.
        self._group = GroupCommit(self._create_group, key=lambda r: r.app_name, name="deployment-creates")

    def create(self, app_name: str, *, rebuild: bool = False, commit_sha: str = "",
               trigger: Trigger = Trigger.API, source_deployment: str = "", request_id: str = "",
               delivery_id: str = "", pusher: str = "", commit_message: str = "",
               supersede_queued: bool = False, before_commit_sha: str = "") -> DeploymentView:
        """Queues a deployment. A webhook deployment of a commit older than the newest push seen
        (services.deployments.pushes) is recorded SUPERSEDED at once, with the reason, and never runs."""
        return self._group.submit(self._request(
            app_name, rebuild, commit_sha, trigger, source_deployment, request_id, delivery_id, pusher,
            commit_message, supersede_queued, before_commit_sha))

    async def create_async(self, app_name: str, **kw) -> DeploymentView:
        """`create` for a caller on an event loop (the API's CreateDeployment): it holds no thread
        while its group is written (by the group's own writer thread). A redeploy of a release is checked by the rollback guard
        (which may ask an agent) in the loop's executor instead."""
        if kw.get("source_deployment"):
            return await asyncio.get_running_loop().run_in_executor(None, functools.partial(self.create, app_name, **kw))
        return await self._group.submit_async(self._request(app_name, **kw))

    def _request(self, app_name: str, rebuild: bool = False, commit_sha: str = "", trigger: Trigger = Trigger.API,
                 source_deployment: str = "", request_id: str = "", delivery_id: str = "", pusher: str = "",
                 commit_message: str = "", supersede_queued: bool = False, before_commit_sha: str = "") -> _Create:
        """A create's arguments, validated (bad input fails here, never in a group)."""
        v.app_name(app_name)
        if commit_sha:
            v.commit_sha(commit_sha)
        if before_commit_sha.strip("0"):
            v.commit_sha(before_commit_sha)
        else:
            before_commit_sha = ""  # GitHub's all-zero `before`: the push created the branch
        for what, value in (("request_id", request_id), ("delivery_id", delivery_id), ("pusher", pusher)):
            if len(value) > 255:
                raise InvalidArgument(f"{what} is longer than 255 characters")
        if len(commit_message) > 64 * 1024:
            raise InvalidArgument("commit_message is longer than 64 KiB")
        if source_deployment:
            source_id = parse_name(source_deployment)
            if self.rollback_guard is not None:
                self.rollback_guard.check(app_name, source_id)
        return _Create(app_name, rebuild, commit_sha, trigger, source_deployment, request_id, delivery_id, pusher,
                       commit_message, supersede_queued, before_commit_sha)

    def _raise_duplicate(self, request_id: str) -> None:
        with self.db.read() as s:
            existing = repo.by_request_id(s, request_id)
        if existing is not None:
            raise RequestAlreadyProcessed(
                f"request {request_id!r} already created {deployment_name(existing.app.name, existing.id)}",
                metadata={"deployment": deployment_name(existing.app.name, existing.id)},
            )

    def _create_group(self, requests: list[_Create]) -> list:
        """The group commit's writer: the creates that arrived together, in one transaction. When it
        fails (one request's idempotency key was used already, or a lock conflict with another
        replica) nothing of it is kept and each request is written alone, as it would have been
        without the group, so each caller gets its own answer."""
        if len(requests) > 1:
            try:
                return self._create_all(requests)
            except SQLAlchemyError:
                pass
        return [self._create_one(r) for r in requests]

    def _create_one(self, r: _Create):
        try:
            return self._create_all([r])[0]
        except IntegrityError as err:
            # Another request with the same idempotency key won the race.
            if r.request_id:
                try:
                    self._raise_duplicate(r.request_id)
                except RequestAlreadyProcessed as duplicate:
                    return duplicate
            return err
        except Exception as err:  # noqa: BLE001 - this caller's error, raised in its own thread
            return err

    def _create_all(self, requests: list[_Create]) -> list:
        """Writes the requests (at most one per app) in one transaction: the deployments in one
        INSERT, their jobs in one, their first events in one, the older queued deployments they
        supersede in two more. A repeated request_id is caught by its unique constraint (no read
        first: this is the hot path of every webhook delivery). Returns a DeploymentView or the
        error (app or source deployment not found) for each request, in order."""
        outcomes: list = [None] * len(requests)
        made = []  # (index, request, app, trigger, older push or None)
        with self.db.session() as s:
            # The apps and each one's newest push (the older-push rule's first fact) in one statement.
            found = repo.apps_with_newest_push(s, [r.app_name for r in requests])
            values = []
            for i, r in enumerate(requests):
                if r.app_name not in found:
                    outcomes[i] = AppNotFound(f"app {r.app_name!r} not found")
                    continue
                app, newest_push = found[r.app_name]
                trigger, source_id = r.trigger, None
                if r.source_deployment:
                    source_id = parse_name(r.source_deployment)
                    source = repo.get(s, source_id)
                    if source is None or source.app_id != app.id:
                        outcomes[i] = DeploymentNotFound(
                            f"deployment {r.source_deployment!r} of app {r.app_name!r} not found")
                        continue
                    if source.state != State.SUCCEEDED or not source.release:
                        outcomes[i] = ReleaseNotRedeployable(
                            f"deployment {source_id} did not succeed: only a successful release can be redeployed")
                        continue
                    trigger = Trigger.ROLLBACK
                older = (self._older_push(s, app.id, newest_push, r.commit_sha, r.before_commit_sha)
                         if trigger == Trigger.WEBHOOK else None)
                row = dict(
                    app_id=app.id, state=str(State.QUEUED), phase=str(Phase.QUEUED), trigger=str(trigger),
                    rebuild=r.rebuild, requested_commit_sha=r.commit_sha, source_deployment_id=source_id,
                    created_at=utcnow(), request_id=r.request_id or None, delivery_id=r.delivery_id,
                    pusher=r.pusher, commit_message=r.commit_message, before_commit_sha=r.before_commit_sha,
                    superseded_by_id=None, failure_reason="", finished_at=None,
                )
                if older is not None:
                    newest_id, reason = older
                    row.update(state=str(State.SUPERSEDED), superseded_by_id=newest_id, failure_reason=reason,
                               finished_at=utcnow())
                values.append(row)
                made.append((i, r, app, trigger, older))
            deps = repo.insert_many_returning(s, values) if values else []
            jobs, first_events, newer = [], [], {}
            for (_i, r, app, trigger, older), dep in zip(made, deps):
                dep.app = app
                if older is not None:
                    first_events.append((dep.id, EventKind.STATE, Phase.QUEUED, f"ignored: {older[1]}",
                                         State.SUPERSEDED))
                    continue
                jobs.append((dep.id, dep.app_id))
                first_events.append((dep.id, EventKind.STATE, Phase.QUEUED, f"queued ({trigger.lower()})",
                                     State.QUEUED))
                if r.supersede_queued:
                    newer[dep.app_id] = dep
            self.queue.enqueue_many(s, jobs)
            self.events.append_many(s, first_events, first=True)
            superseded = self._supersede_older(s, newer)
            for (i, r, app, trigger, older), dep in zip(made, deps):
                if older is not None:
                    position = 0
                elif r.supersede_queued:
                    position = 1  # every older queued deployment was just superseded: this one is next
                else:
                    position = repo.queue_position(s, app.id, dep.id)
                outcomes[i] = DeploymentView(dep, position)
        for deployment_id in [*superseded, *(dep.id for dep in deps)]:
            self.events.notifier.notify(deployment_id)
        if jobs:
            self.queue.wake()
        return outcomes

    @staticmethod
    def _older_push(s, app_id: int, newest_push: tuple | None, commit_sha: str, before_commit_sha: str
                    ) -> tuple[int, str] | None:
        """(the newest push's deployment id, why) when a pushed commit is older than that push;
        `newest_push`: repo.apps_with_newest_push's for the app. Whether the app saw the commit is
        read only when it decides (a replay or a late delivery), not for the next push of a chain."""
        if not commit_sha or newest_push is None:
            return None
        newest = pushes.Push(*newest_push)
        if not pushes.seen_decides(commit_sha, before_commit_sha, newest):
            return None
        reason = pushes.older_than_newest(commit_sha, before_commit_sha, newest, repo.push_seen(s, app_id, commit_sha))
        return (newest.deployment_id, reason) if reason else None

    def _supersede_older(self, s, newer: dict[int, Deployment]) -> list[int]:
        """Ends each app's older queued deployments (`newer`: app id -> its new deployment): only
        the newest push needs deploying. Returns the ids it ended."""
        ended = repo.supersede_queued_before_each(s, {app_id: dep.id for app_id, dep in newer.items()}, utcnow())
        if not ended:
            return []
        self.queue.announce(s)  # their jobs ended
        by_id = {dep.id: dep for dep in newer.values()}
        events = []
        for newer_id, ids in ended.items():
            commit = (by_id[newer_id].requested_commit_sha or "branch head")[:12]
            # Their rows are locked by the update: no second lock for the seq.
            events += [(older, EventKind.STATE, Phase.QUEUED, f"superseded by deployments/{newer_id} ({commit})",
                        State.SUPERSEDED) for older in ids]
        self.events.append_many(s, events)
        return [older for ids in ended.values() for older in ids]

    def rollback(self, app_name: str, deployment: str = "") -> DeploymentView:
        """Queues a redeploy of `deployment`'s release, or of the last successful one before the
        release serving now."""
        v.app_name(app_name)
        if not deployment:
            with self.db.read() as s:
                app = apps_repo.get_app(s, app_name)
                if app is None:
                    raise AppNotFound(f"app {app_name!r} not found")
                earlier = repo.previous_success(s, app.id, before=app.current_deployment_id)
            if earlier is None:
                raise NoEarlierRelease(f"app {app_name!r} has no earlier successful release to roll back to")
            deployment = f"deployments/{earlier.id}"
        return self.create(app_name, source_deployment=deployment, trigger=Trigger.ROLLBACK)

    def get(self, deployment_id: int) -> DeploymentView:
        with self.db.read() as s:
            dep = repo.get(s, deployment_id)
            if dep is None:
                raise DeploymentNotFound(f"deployment {deployment_id} not found")
            positions = repo.queue_positions(s, [dep.app_id]) if dep.state == State.QUEUED else {}
            pruned = State(dep.state).terminal and event_retention.log_pruned(s, dep.id)
            return DeploymentView(dep, positions.get(dep.id, 0), log_pruned=pruned)

    def list(self, app_name: str, *, page_size: int, page_token: str) -> tuple[list[DeploymentView], str]:
        size = paging.page_size(page_size, default=20, maximum=500)
        before = paging.decode(page_token).get("before")
        with self.db.read() as s:
            app_id = None
            if app_name:
                app = apps_repo.get_app(s, app_name)
                if app is None:
                    raise AppNotFound(f"app {app_name!r} not found")
                app_id = app.id
            rows = repo.list_for_app(s, app_id, before=before, limit=size + 1)
            more = len(rows) > size
            rows = rows[:size]
            positions = repo.queue_positions(s, {r.app_id for r in rows if r.state == State.QUEUED})
        token = paging.encode({"before": rows[-1].id}) if more else ""
        return [DeploymentView(r, positions.get(r.id, 0)) for r in rows], token

    def cancel(self, deployment_id: int) -> DeploymentView:
        """A queued deployment ends CANCELLED at once; a running one is asked to stop and ends
        CANCELLED when its worker has undone what it started."""
        with self.db.session() as s:
            dep = repo.get(s, deployment_id)
            if dep is None:
                raise DeploymentNotFound(f"deployment {deployment_id} not found")
            state = State(dep.state)
            if state.terminal:
                raise DeploymentNotCancellable(f"deployment {deployment_id} already finished ({state.lower()})")
            if Phase(dep.phase) in PAST_SWITCH:
                raise DeploymentNotCancellable(f"deployment {deployment_id} already switched traffic: deploy again or roll back instead")
            if state == State.QUEUED:
                # The job's row first, then the deployment's: the order a worker's writes lock them.
                self.queue.discard(s, dep.id)
                dep.state = str(State.CANCELLED)
                dep.failure_phase = str(Phase.QUEUED)
                dep.failure_reason = "cancelled while queued"
                dep.finished_at = utcnow()
                self.events.append(s, dep.id, EventKind.STATE, Phase.QUEUED, "cancelled while queued", state=State.CANCELLED)
            else:
                dep.cancel_requested = True
                # The replica whose worker runs it may be another one: it hears this at commit.
                self.cancels.publish(s, dep.id)
        self.events.notifier.notify(deployment_id)
        if state == State.RUNNING:
            self.cancels.cancel(deployment_id)
        return self.get(deployment_id)

