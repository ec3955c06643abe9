"""Config as a release: change an app's environment and, on request, release the change at once.

Invariant: with `deploy`, the env change and its CONFIG deployment commit in one transaction (no
env changed without its deployment, no deployment of an env never stored); when nothing of the
app serves, nothing changes (AppNotDeployed). The deployment names the serving deployment as its
source, so the pipeline runs that release's image again (no build, like a rollback) but with the
app's current settings (services.deployments.pipeline); its release record freezes the new env
and sealed secret env, so a rollback to the deployment before brings the old env back.
"""

from __future__ import annotations

from services.apps import repository as apps_repo
from services.core import validation as v
from services.core.errors import AppNotDeployed, AppNotFound, InvalidArgument
from services.core.states import EventKind, Phase, State, Trigger
from services.db.models import App, utcnow
from services.db.session import Database
from services.deployments import repository as deployments_repo
from services.deployments.service import DeploymentService, DeploymentView
from services.security.secretbox import MASK, SecretBox


def merged_env(plain: dict[str, str], secret: dict[str, str], *, env: dict[str, str],
               secret_env: dict[str, str], unset: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """(plain, secret) after removing `unset` and setting `env` and `secret_env`; a name moves
    between plain and secret when it is set as the other kind (it is never in both)."""
    plain, secret = dict(plain), dict(secret)
    for key in unset:
        plain.pop(key, None)
        secret.pop(key, None)
    for key, value in env.items():
        secret.pop(key, None)
        plain[key] = value
    for key, value in secret_env.items():
        plain.pop(key, None)
        secret[key] = value
    return plain, secret


class ConfigReleases:
    def __init__(self, db: Database, box: SecretBox, deployments: DeploymentService) -> None:
        self.db = db
        self.box = box
        self.deployments = deployments

    def set_env(self, name: str, *, env: dict[str, str], secret_env: dict[str, str],
                unset: list[str], deploy: bool) -> tuple[App, DeploymentView | None]:
        v.app_name(name)
        v.env(env)
        v.env(secret_env)
        v.env({key: "" for key in unset})  # names only: the same rule for a name
        if MASK in secret_env.values():
            raise InvalidArgument(f"a secret value cannot be {MASK!r} (that is how stored values are shown)")
        both = (set(env) | set(secret_env)) & set(unset)
        if both or set(env) & set(secret_env):
            raise InvalidArgument(f"{', '.join(sorted(both or set(env) & set(secret_env)))} given twice: "
                                  "set each name once, as plain or secret, or unset it")
        view = None
        with self.db.session() as s:
            app = apps_repo.get_app(s, name)
            if app is None:
                raise AppNotFound(f"app {name!r} not found")
            source = None
            if deploy:
                source = deployments_repo.get(s, app.current_deployment_id) if app.current_deployment_id else None
                if source is None or source.state != State.SUCCEEDED or not source.release:
                    raise AppNotDeployed(f"app {name!r} serves nothing yet, so there is no image to "
                                         "release the env with: deploy it first (the env was not changed)")
            plain, secret = merged_env(dict(app.env or {}), self.box.decrypt_map(app.secret_env),
                                       env=env, secret_env=secret_env, unset=unset)
            v.env(plain)
            v.env(secret)
            app.env = plain
            app.secret_env = self.box.encrypt_map(secret)
            if source is not None:
                view = self._queue(s, app, source.id)
        if view is not None:
            self.deployments.events.notifier.notify(view.row.id)
            self.deployments.queue.wake()
        return self._app(name), view

    def _app(self, name: str) -> App:
        with self.db.read() as s:
            return apps_repo.get_app(s, name)

    def _queue(self, s, app: App, source_id: int) -> DeploymentView:
        """The CONFIG deployment, queued in the caller's transaction (as DeploymentService.create
        queues any other: its row, its job, its first event)."""
        dep = deployments_repo.insert_returning(s, dict(
            app_id=app.id, state=str(State.QUEUED), phase=str(Phase.QUEUED), trigger=str(Trigger.CONFIG),
            rebuild=False, requested_commit_sha="", source_deployment_id=source_id, created_at=utcnow(),
            request_id=None, delivery_id="", pusher="", commit_message="", before_commit_sha=""))
        dep.app = app
        self.deployments.queue.enqueue(s, dep.id, dep.app_id)
        self.deployments.events.append(s, dep.id, EventKind.STATE, Phase.QUEUED,
                                       f"queued (config: the image of deployment {source_id} with the new env)",
                                       state=State.QUEUED, seq=1)
        return DeploymentView(dep, deployments_repo.queue_position(s, app.id, dep.id))
