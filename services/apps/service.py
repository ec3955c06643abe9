"""App use cases: create, read, list, update and delete apps, with validation before any write."""

from __future__ import annotations

import secrets
from dataclasses import replace

from sqlalchemy.exc import IntegrityError

from services.apps import placement
from services.apps import repository as repo
from services.apps.spec import SETTABLE, AppSpec
from services.core import paging
from services.core.errors import AppAlreadyExists, AppNotFound, DeploymentInProgress, InvalidArgument, ServerNotFound
from services.core.states import State
from services.db.models import App
from services.db.session import Database
from services.security.secretbox import MASK, SecretBox


def new_webhook_secret() -> str:
    return secrets.token_urlsafe(32)


# Settable fields stored as-is on the row ("server", "servers" and "secret_env" need work first).
_STORED_AS_IS = tuple(k for k in SETTABLE if k not in ("server", "servers", "secret_env"))


def placement_changes(changes: dict) -> dict:
    """An update's `server` and `servers` made one: `server` alone means servers=[server] (a
    move, as before apps had several), `servers` alone brings its first as `server`; both must
    agree (AppSpec.validate says so)."""
    changes = dict(changes)
    if "servers" in changes and not changes["servers"] and not changes.get("server"):
        raise InvalidArgument("servers is empty: name at least one server the app runs on", field="app.servers")
    if "server" in changes and "servers" not in changes:
        changes["servers"] = [changes["server"]] if changes["server"] else []
    elif "servers" in changes and "server" not in changes:
        changes["server"] = changes["servers"][0] if changes["servers"] else ""
    return changes


class AppService:
    def __init__(self, db: Database, box: SecretBox):
        self.db = db
        self.box = box
        # services.apps.moves.Moves (or None): an update that changes a serving app's servers
        # queues its move deployment in the update's transaction.
        self.moves = None

    @staticmethod
    def _servers(s, names: list[str]) -> list:
        """The rows of these servers, in order; ServerNotFound naming each one not registered."""
        rows = [repo.get_server(s, n) for n in names]
        missing = [n for n, row in zip(names, rows) if row is None]
        if missing:
            raise ServerNotFound(f"server{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} "
                                 f"{'are' if len(missing) > 1 else 'is'} not registered: add "
                                 f"{'them' if len(missing) > 1 else 'it'} with 'serversinc servers add' first",
                                 metadata={"servers": ",".join(missing)})
        return rows

    def create(self, spec: AppSpec) -> App:
        spec = spec.with_defaults().validate()
        if MASK in spec.secret_env.values():
            raise InvalidArgument("a new app's secret env cannot contain masked values")
        with self.db.session() as s:
            if repo.get_app(s, spec.name):
                raise AppAlreadyExists(f"app {spec.name!r} already exists")
            servers = self._servers(s, spec.servers)
            app = App(**{k: getattr(spec, k) for k in _STORED_AS_IS}, name=spec.name, server=servers[0],
                      secret_env=self.box.encrypt_map(spec.secret_env),
                      webhook_secret=self.box.encrypt(new_webhook_secret()),
                      notification_secret=self.box.encrypt(new_webhook_secret()))
            s.add(app)
            try:
                s.flush()
            except IntegrityError:
                raise AppAlreadyExists(f"app {spec.name!r} already exists") from None
            repo.set_app_servers(s, app, servers)
        return self.get(spec.name)

    def webhook(self, name: str, base_url: str) -> tuple[str, str, str]:
        """(payload URL, secret) to paste into GitHub, and the secret outgoing notifications are
        signed with; apps made before either existed get their secret now."""
        with self.db.session() as s:
            app = repo.get_app(s, name)
            if app is None:
                raise AppNotFound(f"app {name!r} not found")
            if not app.webhook_secret:
                app.webhook_secret = self.box.encrypt(new_webhook_secret())
            if not app.notification_secret:
                app.notification_secret = self.box.encrypt(new_webhook_secret())
            return (f"{base_url.rstrip('/')}/webhooks/github/{app.name}", self.box.decrypt(app.webhook_secret),
                    self.box.decrypt(app.notification_secret))

    def secret_env_keys(self, app: App) -> list[str]:
        """The names of the app's secret variables (their values never leave the box)."""
        return sorted(self.box.decrypt_map(app.secret_env))

    def get(self, name: str) -> App:
        with self.db.read() as s:
            app = repo.get_app(s, name)
            if app is None:
                raise AppNotFound(f"app {name!r} not found")
            return app

    def list(self, *, page_size: int, page_token: str) -> tuple[list[App], str]:
        size = paging.page_size(page_size, default=50, maximum=500)
        after = paging.decode(page_token).get("after", "")
        with self.db.read() as s:
            apps = repo.list_apps(s, after=after, limit=size + 1)
        more = len(apps) > size
        apps = apps[:size]
        return apps, paging.encode({"after": apps[-1].name}) if more else ""

    def servers_of(self, app: App) -> list[str]:
        """The app's servers in rollout order (servers[0] is app.server)."""
        with self.db.read() as s:
            return repo.app_server_names(s, app.id) or [app.server.name]

    def runs_on(self, app: App) -> list[str]:
        """Every server something of the app may run on: its servers, and where its serving
        release runs (a move that has not succeeded yet leaves it on the servers it left)."""
        with self.db.read() as s:
            names = repo.app_server_names(s, app.id) or [app.server.name]
            serving = repo.serving_outcomes(s, app)
        if serving is not None:
            names += [n for n in placement.succeeded_servers(serving, app.server.name) if n not in names]
        return names

    def servers_by_app(self, apps) -> dict[int, list[str]]:
        """Each app's servers in rollout order, by app id, read at once."""
        with self.db.read() as s:
            return repo.server_names_by_app(s, [a.id for a in apps])

    def update(self, name: str, changes: dict) -> App:
        """Changes the given fields. A change of a serving app's set of servers is a move: its
        serving commit is deployed to the new set (services.apps.moves), in this transaction."""
        unknown = set(changes) - set(SETTABLE)
        if unknown:
            raise InvalidArgument(f"cannot update {', '.join(sorted(unknown))}: settable fields are {', '.join(SETTABLE)}")
        changes = placement_changes(changes)
        moved = None
        with self.db.session() as s:
            app = repo.get_app(s, name)
            if app is None:
                raise AppNotFound(f"app {name!r} not found")
            stored_secrets = self.box.decrypt_map(app.secret_env)
            before = repo.app_server_names(s, app.id) or [app.server.name]
            current = AppSpec(name=app.name, **{k: getattr(app, k) for k in _STORED_AS_IS},
                              server=app.server.name, servers=before, secret_env=stored_secrets)
            if "secret_env" in changes:
                changes = {**changes, "secret_env": {
                    k: stored_secrets.get(k, "") if value == MASK else value
                    for k, value in changes["secret_env"].items()
                }}
            spec = replace(current, **changes).with_defaults().validate()
            for key in SETTABLE:
                if key == "secret_env":
                    app.secret_env = self.box.encrypt_map(spec.secret_env)
                elif key == "servers":
                    if spec.servers != before:
                        servers = self._servers(s, spec.servers)
                        if set(spec.servers) != set(before) and self.moves is not None:
                            # Written down before the app's server changes: it says where the
                            # serving release runs, which the new servers no longer tell.
                            self.moves.note_where_serving(s, app, before, current.replicas)
                        repo.set_app_servers(s, app, servers)
                        if set(spec.servers) != set(before) and self.moves is not None:
                            moved = self.moves.queue(s, app, before)
                elif key != "server":  # written with "servers"
                    setattr(app, key, getattr(spec, key))
        if moved is not None:
            self.moves.announce(moved)
        return self.get(name)

    def record_maintenance(self, name: str, enabled: bool, message: str) -> App:
        """Store the maintenance mode its server has just applied."""
        with self.db.session() as s:
            app = repo.get_app(s, name)
            if app is None:
                raise AppNotFound(f"app {name!r} not found")
            app.maintenance, app.maintenance_message = enabled, message if enabled else ""
        return self.get(name)

    def ensure_deletable(self, name: str, *, active_states=(State.RUNNING,)) -> None:
        """DeploymentInProgress while a deployment of the app runs: checked before anything is
        removed. Queued deployments do not block a delete; they are deleted with the app."""
        with self.db.read() as s:
            app = repo.get_app(s, name)
            if app is None:
                raise AppNotFound(f"app {name!r} not found")
            self._refuse_if_active(s, app, active_states)

    @staticmethod
    def _refuse_if_active(s, app: App, active_states) -> None:
        if repo.has_deployment_in(s, app.id, active_states):
            raise DeploymentInProgress(f"app {app.name!r} has a deployment in progress: cancel it or wait")

    def delete(self, name: str, *, active_states=(State.RUNNING,)) -> App:
        """Deletes the row (its deployments and their jobs go with it: a queued one never runs);
        the caller removes the containers first (see Platform.delete_app). Checked again here,
        in the deleting transaction, for a deployment that started meanwhile."""
        with self.db.session() as s:
            app = repo.get_app(s, name)
            if app is None:
                raise AppNotFound(f"app {name!r} not found")
            self._refuse_if_active(s, app, active_states)
            s.delete(app)
            return app
