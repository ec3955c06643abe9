"""Rollback that respects retention: refused before it starts when the release's image is gone.

The agent prunes images past an app's last N releases (agent.retention); a rollback to such a
release would fail at START, after queueing, with "image not found". So before the deployment is
created the app's agent is asked which of the app's images it still holds (ListImages), and a
release whose image (by id) is not among them is refused with FAILED_PRECONDITION, saying which
commit to deploy instead. An agent that cannot be reached does not block the rollback: it is
queued as before, and the pipeline reports whatever the agent then says.
"""

from __future__ import annotations

import logging

from services.agents.port import AgentError
from services.core.errors import FailedPrecondition
from services.db.session import Database
from services.deployments import repository as repo

log = logging.getLogger(__name__)


class ImagePruned(FailedPrecondition):
    reason = "IMAGE_PRUNED"


def pruned_message(deployment_id: int, retain: int, commit_sha: str) -> str:
    kept = f"only the last {retain} releases keep their image" if retain else "retention removed it"
    return (f"the image of deployment {deployment_id} was pruned: {kept}; deploy commit "
            f"{commit_sha[:12]} again instead")


class RollbackGuard:
    def __init__(self, db: Database, agents) -> None:
        self.db = db
        self.agents = agents  # services.agents.client.AgentDirectory

    def check(self, app_name: str, source_deployment_id: int) -> None:
        """ImagePruned when the source release's image is no longer on its app's server."""
        with self.db.read() as s:
            source = repo.get(s, source_deployment_id)
            if (source is None or source.app.name != app_name or not source.release
                    or not source.release.get("image_id")):
                return  # not this app's release (the domain says so), or one recorded without an id
            image_id, commit = source.release["image_id"], source.release.get("commit_sha", "")
            app, server = source.app.name, source.app.server.name
        try:
            held = self.agents.for_server(server).list_images(app)
        except AgentError as err:
            log.warning("rollback to deployment %s: cannot ask server %s for its images (%s); "
                        "queued unchecked", source_deployment_id, server, err)
            return
        if not any(image.id == image_id for image in held.images):
            raise ImagePruned(pruned_message(source_deployment_id, held.retain_releases, commit),
                              metadata={"deployment": str(source_deployment_id), "commit_sha": commit})
