"""Moving an app: a change of a serving app's set of servers deploys its serving commit there.

Invariants:
- The new servers, the note of where the serving release runs and the move's deployment commit
  in one transaction (AppService.update): no app pointed at servers its release never reaches,
  no move deployment for a change that was not stored.
- Before the app's servers change, the serving deployment says where its release runs: a
  deployment recorded before per-server outcomes existed has none, and the rule that reads it
  ("it ran on the app's server", placement.succeeded_servers) would then name the new server.
  So its outcomes are written down first, on the servers the app had.
- The move is a normal deploy of the serving commit (trigger MOVE, that commit requested, no
  forced rebuild): the pipeline builds it, or pulls it by digest, on the new servers, rolls out,
  and then removes the app from the servers it no longer names (the snapshot's
  previous_servers minus its servers). Until that deploy succeeds the old servers keep serving.
"""

from __future__ import annotations

from services.apps import placement
from services.apps import repository as apps_repo
from services.core.states import EventKind, Phase, State, Trigger
from services.db.models import App, utcnow
from services.deployments import repository as deployments_repo
from services.deployments.service import DeploymentService, DeploymentView


class Moves:
    def __init__(self, deployments: DeploymentService) -> None:
        self.deployments = deployments

    @staticmethod
    def _serving(s, app: App):
        serving = deployments_repo.get(s, app.current_deployment_id) if app.current_deployment_id else None
        if serving is None or serving.state != State.SUCCEEDED or not serving.commit_sha:
            return None
        return serving

    def note_where_serving(self, s, app: App, servers: list[str], replicas: int) -> None:
        """Writes the serving deployment's outcomes when it has none (it ran before they were
        recorded, on the app's one server)."""
        serving = self._serving(s, app)
        if serving is not None and not serving.server_outcomes:
            serving.server_outcomes = placement.legacy_outcomes(servers[0], replicas)

    def queue(self, s, app: App, before: list[str]) -> DeploymentView | None:
        """The move's deployment of the serving commit, queued in the caller's transaction (its row,
        its job, its first event, as DeploymentService.create queues any other); None when nothing
        serves (the next deploy goes to the new servers anyway)."""
        serving = self._serving(s, app)
        if serving is None:
            return None
        after = apps_repo.app_server_names(s, app.id)
        dep = deployments_repo.insert_returning(s, dict(
            app_id=app.id, state=str(State.QUEUED), phase=str(Phase.QUEUED), trigger=str(Trigger.MOVE),
            rebuild=False, requested_commit_sha=serving.commit_sha, source_deployment_id=None, created_at=utcnow(),
            request_id=None, delivery_id="", pusher="", commit_message=serving.commit_message, before_commit_sha=""))
        dep.app = app
        self.deployments.queue.enqueue(s, dep.id, dep.app_id)
        self.deployments.events.append(
            s, dep.id, EventKind.STATE, Phase.QUEUED,
            f"queued (move from {', '.join(before)} to {', '.join(after)}: commit {serving.commit_sha[:12]} "
            f"of deployment {serving.id})", state=State.QUEUED, seq=1)
        return DeploymentView(dep, deployments_repo.queue_position(s, app.id, dep.id))

    def announce(self, view: DeploymentView) -> None:
        """After the commit: watchers and workers learn of the move's deployment."""
        self.deployments.events.notifier.notify(view.row.id)
        self.deployments.queue.wake()

